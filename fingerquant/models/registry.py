"""Model registry: maps a model name to the function that builds it.

Builders register themselves with :func:`register_model` when their module is
imported; :mod:`fingerquant.models` imports all of them, so importing the
package is enough before calling :func:`create_model`.
"""

from collections.abc import Callable

from torch import nn

ModelBuilder = Callable[[int], nn.Module]

_BUILDERS: dict[str, ModelBuilder] = {}


def register_model(name: str) -> Callable[[ModelBuilder], ModelBuilder]:
    """Register a builder ``f(num_classes) -> nn.Module`` under ``name``."""

    def decorator(builder: ModelBuilder) -> ModelBuilder:
        if name in _BUILDERS:
            raise ValueError(f"Model name {name!r} is already registered: choose another name.")
        _BUILDERS[name] = builder
        return builder

    return decorator


def list_models() -> list[str]:
    """Return the registered model names, sorted."""
    return sorted(_BUILDERS)


def create_model(name: str, num_classes: int) -> nn.Module:
    """Build the registered model ``name`` with ``num_classes`` output logits.

    Raises:
        ValueError: if ``name`` is not registered or ``num_classes`` is below 2.
    """
    if name not in _BUILDERS:
        raise ValueError(f"Unknown model {name!r}: expected one of {', '.join(list_models())}.")
    if num_classes < 2:
        raise ValueError(f"Invalid num_classes {num_classes}: expected at least 2.")
    return _BUILDERS[name](num_classes)
