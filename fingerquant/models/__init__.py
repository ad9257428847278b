"""Full-precision classifiers for 8 x 8 touch images, built by name.

Importing this package registers every model, so ``create_model("model1", 10)``
works right after ``import fingerquant.models``.
"""

from fingerquant.models import capfingerid, model1, model2  # noqa: F401  (registers the models)
from fingerquant.models.cnn import IMAGE_SIZE, TouchCNN
from fingerquant.models.registry import create_model, list_models, register_model

__all__ = ["IMAGE_SIZE", "TouchCNN", "create_model", "list_models", "register_model"]
