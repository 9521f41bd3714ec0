"""Optimizer registry. Each entry declares its parameters (for validation and run paths) and
builds a ``torch.optim.Optimizer``; torch is imported only when one is built."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from corruptlab.params import Param, slug
from corruptlab.registry import Registry

LR = Param("lr", "lr", float, 0.0, None, doc="learning rate", low_open=True)
WD = Param("weight_decay", "wd", float, 0.0, None, default=0.0, doc="L2 weight decay")


@dataclass(frozen=True)
class OptimizerKind:
    name: str
    params: tuple[Param, ...]
    build: Callable[..., Any]
    doc: str

    def slug(self, values: dict) -> str:
        return slug(self.name, self.params, values)


OPTIMIZERS: Registry[OptimizerKind] = Registry("optimizer")


def _register(name: str, doc: str, *params: Param):
    def decorate(build: Callable[..., Any]) -> Callable[..., Any]:
        OPTIMIZERS.add(name, OptimizerKind(name, params, build, doc))
        return build

    return decorate


@_register("adadelta", "Adadelta (Rolnick et al.'s optimizer), rho 0.9, eps 1e-6", LR, WD)
def _adadelta(parameters: Iterable, lr: float, weight_decay: float):
    import torch

    return torch.optim.Adadelta(parameters, lr=lr, weight_decay=weight_decay)


@_register(
    "sgd",
    "SGD with optional (heavy-ball) momentum",
    LR,
    Param("momentum", "m", float, 0.0, 1.0, default=0.0, doc="momentum"),
    WD,
)
def _sgd(parameters: Iterable, lr: float, momentum: float, weight_decay: float):
    import torch

    return torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay)


@_register("adam", "Adam, betas (0.9, 0.999)", LR, WD)
def _adam(parameters: Iterable, lr: float, weight_decay: float):
    import torch

    return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)


def build_optimizer(parameters: Iterable, spec: dict):
    """Build from ``{"name": ..., **params}`` (missing optional params take their defaults)."""
    kind = OPTIMIZERS.get(spec["name"])
    values = {p.name: spec.get(p.name, p.default) for p in kind.params}
    return kind.build(parameters, **values)
