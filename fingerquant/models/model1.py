"""Model 1: the smallest classifier, one stage of two convs (16 and 32 channels).

conv 1->16, conv 16->32, maxpool, dropout 0.25, flatten (512),
linear 512->64 with ReLU and BN1d, dropout 0.25, linear 64->C.
"""

from fingerquant.models.cnn import TouchCNN
from fingerquant.models.registry import register_model


@register_model("model1")
def model1(num_classes: int) -> TouchCNN:
    """Build Model 1 with ``num_classes`` logits."""
    return TouchCNN(stages=[[16, 32]], hidden_features=64, num_classes=num_classes, dropout=0.25)
