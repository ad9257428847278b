"""The CapFingerId network of Le, Mayer and Henze (IUI '19), on 8 x 8 blob images.

conv 1->64, conv 64->64, maxpool, dropout 0.5, conv 64->128, conv 128->128,
maxpool, dropout 0.5, flatten (512), linear 512->256 with ReLU and BN1d,
dropout 0.5, linear 256->C. About 0.4 M parameters.
"""

from fingerquant.models.cnn import TouchCNN
from fingerquant.models.registry import register_model


@register_model("capfingerid")
def capfingerid(num_classes: int) -> TouchCNN:
    """Build the CapFingerId network with ``num_classes`` logits."""
    return TouchCNN(
        stages=[[64, 64], [128, 128]], hidden_features=256, num_classes=num_classes, dropout=0.5
    )
