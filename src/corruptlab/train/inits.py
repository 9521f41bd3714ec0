"""Weight initialisations (a registry): each entry re-draws a built model's linear and conv
weights in place, from the global torch generator (``training.seeded_model`` seeds it from the
run's (study, seed, "init")), and zeroes their biases; batch-norm layers keep weight 1 and
bias 0. A run names its initialisation with the key ``init`` (the ``batchnorm`` study's
config key of that name); a run without it keeps the layers' own (torch default) draws.

Light at import (the Snakefile validates names against this registry): the entries import
torch themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from corruptlab.core.registry import Registry

if TYPE_CHECKING:
    from torch import nn

Init = Callable[["nn.Module"], None]
INITS: Registry[Init] = Registry("initialisation")


def _layers(model: nn.Module) -> list[nn.Module]:
    from torch import nn

    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def _zero_biases(layer: nn.Module) -> None:
    from torch import nn

    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


@INITS.register("kaiming")
def kaiming(model: nn.Module) -> None:
    """He et al. 2015: weights ~ N(0, 2 / fan_in) (kaiming_normal_, fan_in, ReLU gain), biases 0."""
    from torch import nn

    for layer in _layers(model):
        nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
        _zero_biases(layer)


@INITS.register("xavier")
def xavier(model: nn.Module) -> None:
    """Glorot & Bengio 2010: weights ~ N(0, 2 / (fan_in + fan_out)) (xavier_normal_), biases 0."""
    from torch import nn

    for layer in _layers(model):
        nn.init.xavier_normal_(layer.weight)
        _zero_biases(layer)


def initialise(model: nn.Module, name: str) -> nn.Module:
    """Re-draw ``model``'s weights by initialisation ``name`` (in place; returns the model)."""
    INITS.get(name)(model)
    return model
