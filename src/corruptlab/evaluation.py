"""Evaluation of a trained run's logits under one test condition: every registered metric, and
the per-example columns kept in predictions.parquet for later studies (correctness, confidence,
predictive entropy)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from corruptlab.seeding import derive_seed

if TYPE_CHECKING:
    import torch

log = logging.getLogger("corruptlab")


def evaluate_logits(logits: torch.Tensor, labels: torch.Tensor) -> tuple[dict, dict]:
    """Metrics (every registered metric plus ``n``) and per-example columns for one condition."""
    from corruptlab.metrics import compute_metrics, entropies

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
        "entropy": entropies(logits).float().cpu().numpy(),
    }
    return metrics, per_example


def load_condition(condition: dict, data: dict) -> tuple[Any, Any]:
    """(uint8 images, labels) of a test condition: the clean split or a corrupted test set file,
    which must have been made from this very dataset (its content hash is checked)."""
    import torch

    if condition["name"] == "clean":
        return data["test_images"], data["test_labels"]
    path = condition["path"]
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if saved["dataset_hash"] != data["content_hash"]:
        raise ValueError(
            f"{path} was made from another version of dataset {data['name']!r}; delete it and "
            "rerun (the testset rule remakes it)"
        )
    return saved["images"], saved["labels"]


METHOD_COLUMNS = ("lr", "batch_size", "steps")


def evaluate_job(
    run_json: str,
    data_path: str,
    model_path: str,
    conditions: list[dict] | None = None,
    methods: list[dict] | None = None,
    device: str = "auto",
    threads: int = 1,
) -> tuple[list[dict], dict[str, Any]]:
    """Evaluate one trained run under every (condition, method): (metric rows, per-example
    columns). ``conditions``: dicts with ``name``, ``severity`` and, for corrupted test sets,
    ``path``; ``methods``: dicts with ``name`` and the method's parameters (``lr``,
    ``batch_size``, ``steps``). Defaults: the clean test set, no adaptation."""
    import numpy as np
    import torch

    from corruptlab.adaptation import METHODS
    from corruptlab.datasets import load_prepared
    from corruptlab.devices import configure_torch, resolve_device
    from corruptlab.io import read_json
    from corruptlab.models import build_model
    from corruptlab.training import normalize

    conditions = conditions or [{"name": "clean", "severity": 0}]
    methods = methods or [{"name": "source"}]
    device = resolve_device(device)
    configure_torch(threads, device)
    record = read_json(run_json)
    saved = torch.load(model_path, map_location="cpu", weights_only=True)
    model = build_model(saved["model"], tuple(saved["in_shape"]), saved["n_classes"])
    model.load_state_dict(saved["state_dict"])
    model.to(device).eval()
    data = load_prepared(data_path)
    seed = derive_seed(record["run"]["study"], record["run"]["seed"], "adaptation")
    rows, preds = [], []
    for condition in conditions:
        images, labels = load_condition(condition, data)
        x = normalize(images, saved["mean"], saved["std"]).to(device)
        labels = labels.to(device)
        for method in methods:
            params = {k: method[k] for k in METHOD_COLUMNS if k in method}
            logits = METHODS.get(method["name"])(
                model, x, seed=seed, **{"batch_size": 1000, "lr": 1e-3, "steps": 1, **params}
            )
            metrics, per_example = evaluate_logits(logits, labels)
            key = {
                "condition": condition["name"],
                "severity": condition["severity"],
                "method": method["name"],
                "method_id": "-".join(
                    [method["name"], *(f"{k}{method[k]:g}" for k in METHOD_COLUMNS if k in method)]
                ),
                **{f"tta_{k}": method.get(k) for k in METHOD_COLUMNS},
            }
            rows.append({"run_id": record["run"]["run_id"], **key, **metrics})
            n = len(labels)
            constant = {k: np.full(n, np.nan if v is None else v) for k, v in key.items()}
            preds.append({**constant, **per_example})
            log.info(
                "%s s%d %s: %s",
                condition["name"],
                condition["severity"],
                method["name"],
                {k: round(v, 4) for k, v in metrics.items()},
            )
    columns = {k: np.concatenate([np.asarray(p[k]) for p in preds]) for k in preds[0]}
    return rows, columns
