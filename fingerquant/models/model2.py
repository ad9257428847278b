"""Model 2: Model 1 with twice the channels and a wider head.

conv 1->32, conv 32->64, maxpool, dropout 0.25, flatten (1024),
linear 1024->128 with ReLU and BN1d, dropout 0.25, linear 128->C.
"""

from fingerquant.models.cnn import TouchCNN
from fingerquant.models.registry import register_model


@register_model("model2")
def model2(num_classes: int) -> TouchCNN:
    """Build Model 2 with ``num_classes`` logits."""
    return TouchCNN(stages=[[32, 64]], hidden_features=128, num_classes=num_classes, dropout=0.25)
