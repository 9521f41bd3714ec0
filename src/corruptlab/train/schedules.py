"""Learning-rate schedules (a registry): the learning rate of each training epoch.

A schedule is set per optimizer entry (``{name: adadelta, lr: 1.0, schedule: {name: step,
gamma: 0.7}}``) and reaches the trainer in the run's optimizer dict (``"schedule"``; absent for
the default, ``constant``). Both trainers set the optimizer's learning rate at the start of every
epoch to ``lr_at(optimizer, epoch, max_epochs)``: a function of the epoch alone, so a resumed run
follows the same schedule as an uninterrupted one.

Epochs count from 1. ``step``, ``cosine`` and ``drop`` compute their rates as
torch.optim.lr_scheduler's StepLR(step_size=1, gamma), CosineAnnealingLR(T_max=max_epochs) and
MultiStepLR(milestones=[at], gamma) do when stepped once after every epoch (recursively, epoch
by epoch, so the floats agree too). Light: no torch import.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from corruptlab.core.params import Param, slug
from corruptlab.core.registry import Registry

DEFAULT_SCHEDULE = {"name": "constant"}


@dataclass(frozen=True)
class ScheduleKind:
    name: str
    params: tuple[Param, ...]
    # (base lr, epoch counted from 1, max_epochs, **params) -> the epoch's lr
    lr: Callable[..., float]
    doc: str

    def slug(self, values: dict) -> str:
        return slug(self.name, self.params, values)


SCHEDULES: Registry[ScheduleKind] = Registry("lr schedule")


def _register(name: str, doc: str, *params: Param):
    def decorate(lr: Callable[..., float]) -> Callable[..., float]:
        SCHEDULES.add(name, ScheduleKind(name, params, lr, doc))
        return lr

    return decorate


@_register("constant", "the optimizer's lr in every epoch")
def _constant(lr: float, epoch: int, max_epochs: int) -> float:
    return lr


@_register(
    "step",
    "the lr multiplied by gamma after every epoch (StepLR(step_size=1, gamma), as in the "
    "PyTorch MNIST example with gamma 0.7)",
    Param(
        "gamma",
        "g",
        float,
        0.0,
        1.0,
        default=0.7,
        doc="factor applied to the lr after every epoch",
        low_open=True,
    ),
)
def _step(lr: float, epoch: int, max_epochs: int, gamma: float) -> float:
    for _ in range(1, epoch):
        lr = lr * gamma
    return lr


@_register(
    "cosine",
    "cosine annealing from the lr to 0 over max_epochs (CosineAnnealingLR(T_max=max_epochs))",
)
def _cosine(lr: float, epoch: int, max_epochs: int) -> float:
    for k in range(1, epoch):  # the scheduler's k-th step, after epoch k
        factor = (1 + math.cos(math.pi * k / max_epochs)) / (
            1 + math.cos(math.pi * (k - 1) / max_epochs)
        )
        lr = factor * lr
    return lr


@_register(
    "drop",
    "the lr multiplied by gamma once, after epoch `at` (MultiStepLR(milestones=[at], gamma); "
    "Hendrycks & Gimpel 2017's MNIST net: 1e-3, then 1e-4 after epoch 20)",
    Param("at", "at", int, 1, None, doc="the last epoch at the full lr"),
    Param(
        "gamma",
        "g",
        float,
        0.0,
        1.0,
        default=0.1,
        doc="factor applied to the lr after epoch `at`",
        low_open=True,
    ),
)
def _drop(lr: float, epoch: int, max_epochs: int, at: int, gamma: float) -> float:
    return lr * gamma if epoch > at else lr


def schedule_values(spec: dict) -> dict[str, Any]:
    """A schedule spec's parameter values, defaults filled in."""
    kind = SCHEDULES.get(spec["name"])
    return {p.name: spec.get(p.name, p.default) for p in kind.params}


def lr_at(optimizer: dict, epoch: int, max_epochs: int) -> float:
    """The learning rate of ``epoch`` (from 1) for an optimizer spec (``{"name", "lr", ...,
    "schedule": {...}}``; without ``schedule`` the lr is constant)."""
    if not 1 <= epoch <= max_epochs:
        raise ValueError(f"epoch {epoch} outside 1..{max_epochs}")
    spec = optimizer.get("schedule", DEFAULT_SCHEDULE)
    kind = SCHEDULES.get(spec["name"])
    return kind.lr(optimizer["lr"], epoch, max_epochs, **schedule_values(spec))


def is_constant(spec: dict | None) -> bool:
    return spec is None or spec["name"] == DEFAULT_SCHEDULE["name"]
