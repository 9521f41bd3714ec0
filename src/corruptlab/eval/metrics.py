"""Evaluation metrics (a registry): each maps (logits [N, C], labels [N]) to a float.

Written on tensors so they run on the device that holds the logits; each has a test with a
hand-computed case.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from corruptlab.core.registry import Registry

if TYPE_CHECKING:
    import torch

Metric = Callable[["torch.Tensor", "torch.Tensor"], float]
METRICS: Registry[Metric] = Registry("metric")

ECE_BINS = 15


@METRICS.register("accuracy")
def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of examples whose arg-max class is the label."""
    return (logits.argmax(1) == labels).double().mean().item()


@METRICS.register("nll")
def nll(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean negative log-likelihood of the label (nats)."""
    import torch.nn.functional as F

    return F.cross_entropy(logits.double(), labels).item()


def entropies(logits: torch.Tensor) -> torch.Tensor:
    """Per-example predictive entropy (nats)."""
    logp = logits.double().log_softmax(1)
    return -(logp.exp() * logp).sum(1)


@METRICS.register("entropy")
def entropy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean predictive entropy (nats)."""
    return entropies(logits).mean().item()


def expected_calibration_error(
    confidence: torch.Tensor, correct: torch.Tensor, n_bins: int = ECE_BINS
) -> float:
    """ECE over ``n_bins`` equal-width confidence bins: sum_b |B|/N * |acc(B) - conf(B)|.

    A confidence on a bin edge goes to the lower bin (bins are (lo, hi]).
    """
    import torch

    confidence = confidence.double()
    correct = correct.double()
    # bin index: ceil(conf * n) - 1, so (k/n, (k+1)/n] -> k; confidence 0 -> bin 0
    idx = (torch.ceil(confidence * n_bins).long() - 1).clamp(0, n_bins - 1)
    n = confidence.numel()
    count = torch.zeros(n_bins, dtype=torch.float64, device=confidence.device)
    count.index_add_(0, idx, torch.ones_like(confidence))
    conf_sum = torch.zeros_like(count).index_add_(0, idx, confidence)
    acc_sum = torch.zeros_like(count).index_add_(0, idx, correct)
    return ((acc_sum - conf_sum).abs().sum() / n).item()


@METRICS.register("ece")
def ece(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Expected calibration error with 15 equal-width bins of the max-softmax confidence."""
    probs = logits.double().softmax(1)
    confidence, pred = probs.max(1)
    return expected_calibration_error(confidence, pred == labels)


def compute_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Every registered metric on one set of logits."""
    return {name: fn(logits, labels) for name, fn in METRICS.items()}
