"""Training objectives (a registry): the loss a trainer minimises on a batch.

An objective is set per study (``objective: {name: distillation, temperature: 4, alpha: 0.5}``)
and reaches the trainer as ``TrainConfig.objective``; run dicts carry it (``run["objective"]``)
only when it is not the default, ``cross_entropy``. ``build_objective(spec)`` gives an object
with two losses of a batch of logits, hard labels and (for objectives that use them) soft
targets, a float [B, C] array of a teacher's logits per example:

- ``objective(logits [B, C], labels [B], soft [B, C] | None)``: the batch's mean loss (the
  one-model trainer);
- ``objective.per_member(logits [K, B, C], labels [K, B], soft [K, B, C] | None)``: each
  member's mean loss, [K] (the vmap trainer, whose members are independent runs).

Light at import: torch is imported inside the losses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from corruptlab.core.params import Param, slug
from corruptlab.core.registry import Registry

DEFAULT_OBJECTIVE = {"name": "cross_entropy"}


@dataclass(frozen=True)
class ObjectiveKind:
    name: str
    code: str  # what run paths call it: the start of its slug (e.g. "kd" in kd-t4-a0.5)
    params: tuple[Param, ...]
    build: Callable[..., Any]
    doc: str
    soft_targets: bool = False  # it trains on soft targets (TrainData.soft_targets)

    def slug(self, values: dict) -> str:
        return slug(self.code, self.params, values)


OBJECTIVES: Registry[ObjectiveKind] = Registry("objective")


def _register(name: str, code: str, doc: str, *params: Param, soft_targets: bool = False):
    def decorate(build: Callable[..., Any]) -> Callable[..., Any]:
        OBJECTIVES.add(name, ObjectiveKind(name, code, params, build, doc, soft_targets))
        return build

    return decorate


class CrossEntropy:
    """Cross-entropy on the hard (possibly noisy) labels."""

    soft_targets = False

    def __call__(self, logits, labels, soft_targets=None):
        import torch.nn.functional as F

        return F.cross_entropy(logits, labels)

    def per_member(self, logits, labels, soft_targets=None):
        import torch.nn.functional as F

        k, b = labels.shape
        loss = F.cross_entropy(logits.flatten(0, 1), labels.reshape(-1), reduction="none")
        return loss.view(k, b).mean(1)


@dataclass(frozen=True)
class Distillation:
    """Hinton et al. 2015: ``alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + (1 -
    alpha) * cross_entropy(z_s, labels)`` with the student's logits z_s and the teacher's z_t
    (the soft targets, which get no gradient). T^2 keeps the soft term's gradients on the scale
    of the hard term's as T changes."""

    temperature: float
    alpha: float
    soft_targets = True

    def _kl(self, logits, soft_targets):
        """KL(teacher || student) at temperature T, per example ([...])."""
        import torch.nn.functional as F

        if soft_targets is None:
            raise ValueError(
                "the distillation objective needs soft targets (a teacher's logits for every "
                "training example, TrainData.soft_targets); this training set has none"
            )
        if soft_targets.shape != logits.shape:
            raise ValueError(
                f"soft targets of shape {tuple(soft_targets.shape)} for logits of shape "
                f"{tuple(logits.shape)}"
            )
        t = self.temperature
        student = F.log_softmax(logits / t, dim=-1)
        teacher = F.log_softmax(soft_targets.detach().to(logits.dtype) / t, dim=-1)
        return F.kl_div(student, teacher, reduction="none", log_target=True).sum(-1)

    def _combine(self, kl, ce):
        t, a = self.temperature, self.alpha
        return a * t * t * kl + (1 - a) * ce

    def __call__(self, logits, labels, soft_targets=None):
        kl = self._kl(logits, soft_targets).mean()
        return self._combine(kl, CrossEntropy()(logits, labels))

    def per_member(self, logits, labels, soft_targets=None):
        kl = self._kl(logits, soft_targets).mean(1)
        return self._combine(kl, CrossEntropy().per_member(logits, labels))


@_register("cross_entropy", "ce", "cross-entropy on the hard (possibly noisy) labels")
def _cross_entropy() -> CrossEntropy:
    return CrossEntropy()


@_register(
    "distillation",
    "kd",
    "Hinton et al. 2015 knowledge distillation: alpha T^2 KL(softmax(z_t/T) || softmax(z_s/T)) "
    "+ (1 - alpha) cross-entropy on the hard labels, z_t the teacher's logits (soft targets)",
    Param(
        "temperature",
        "t",
        float,
        0.0,
        None,
        doc="softmax temperature T of both teacher and student",
        low_open=True,
    ),
    Param("alpha", "a", float, 0.0, 1.0, doc="weight of the soft-target term"),
    soft_targets=True,
)
def _distillation(temperature: float, alpha: float) -> Distillation:
    return Distillation(temperature, alpha)


def objective_values(spec: dict) -> dict[str, Any]:
    """An objective spec's parameter values, defaults filled in."""
    kind = OBJECTIVES.get(spec["name"])
    return {p.name: spec.get(p.name, p.default) for p in kind.params}


def build_objective(spec: dict | None = None):
    """The loss of ``{"name": ..., **params}`` (None: the default, cross-entropy)."""
    spec = DEFAULT_OBJECTIVE if spec is None else spec
    return OBJECTIVES.get(spec["name"]).build(**objective_values(spec))


def is_default(spec: dict | None) -> bool:
    return spec is None or spec["name"] == DEFAULT_OBJECTIVE["name"]
