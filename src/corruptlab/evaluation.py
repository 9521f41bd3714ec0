"""Evaluation of a trained run under test conditions (a registry: one entry per condition).

A condition maps the prepared dataset to (uint8 test images, labels); every condition gets the
same metrics and one row in eval.parquet, and per-example predictions are kept for later studies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from corruptlab.registry import Registry

if TYPE_CHECKING:
    import torch

Condition = Callable[[dict], tuple["torch.Tensor", "torch.Tensor"]]
CONDITIONS: Registry[Condition] = Registry("test condition")


@CONDITIONS.register("clean")
def clean(data: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The clean test split."""
    return data["test_images"], data["test_labels"]


def evaluate_logits(logits: torch.Tensor, labels: torch.Tensor) -> tuple[dict, dict]:
    """Metrics (every registered metric plus ``n``) and per-example columns for one condition."""
    from corruptlab.metrics import compute_metrics

    probs = logits.double().softmax(1)
    confidence, pred = probs.max(1)
    metrics: dict[str, Any] = {"n": len(labels), **compute_metrics(logits, labels)}
    per_example = {
        "index": np.arange(len(labels)),
        "label": labels.cpu().numpy(),
        "pred": pred.cpu().numpy(),
        "correct": (pred == labels).cpu().numpy(),
        "confidence": confidence.float().cpu().numpy(),
        "p_label": probs.gather(1, labels[:, None])[:, 0].float().cpu().numpy(),
    }
    return metrics, per_example
