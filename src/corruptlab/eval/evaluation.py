"""Evaluation of a trained run: loading it, its test conditions, test-time adaptation on a
stream, and every registered metric of its logits with the per-example columns kept in
predictions.parquet (correctness, confidence, predictive entropy). The evaluate and ood rules'
jobs (corruptlab.jobs.evaluate, corruptlab.jobs.ood) are built from these."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from corruptlab.core.seeding import derive_seed

if TYPE_CHECKING:
    import torch

log = logging.getLogger("corruptlab")


def evaluate_logits(logits: torch.Tensor, labels: torch.Tensor) -> tuple[dict, dict]:
    """Metrics (every registered metric plus ``n``) and per-example columns for one condition."""
    from corruptlab.eval.metrics import compute_metrics, entropies

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
    which must have been made from this very dataset (its content hash is checked); restricted
    to the dataset's ``in_classes`` when it has them."""
    import torch

    from corruptlab.data.datasets import restrict_labels

    if condition["name"] == "clean":
        return data["test_images"], data["test_labels"]
    path = condition["path"]
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if saved["dataset_hash"] != data["content_hash"]:
        raise ValueError(
            f"{path} was made from another version of dataset {data['name']!r}; delete it and "
            "rerun (the testset rule remakes it)"
        )
    return restrict_labels(saved["images"], saved["labels"], data)


def load_run(
    run_json: str, data_path: str, model_path: str, device: str, threads: int
) -> tuple[dict, dict, Any, dict, Any]:
    """What evaluating a trained run needs: (run record, saved model file, the model in eval
    mode on the device, the prepared dataset as the run was trained on, the device)."""
    import torch

    from corruptlab.core.devices import configure_torch, resolve_device
    from corruptlab.core.io import read_json
    from corruptlab.data.datasets import load_prepared
    from corruptlab.train.models import build_model

    device = resolve_device(device)
    configure_torch(threads, device)
    record = read_json(run_json)
    saved = torch.load(model_path, map_location="cpu", weights_only=True)
    model = build_model(saved["model"], tuple(saved["in_shape"]), saved["n_classes"])
    model.load_state_dict(saved["state_dict"])
    model.to(device).eval()
    data = load_prepared(data_path, in_classes=record["run"].get("in_classes"))
    return record, saved, model, data, device


METHOD_COLUMNS = ("lr", "batch_size", "steps", "stream")


def stream_seed(run: dict, condition: dict) -> int:
    """The seed of the shuffled test stream of one run under one test condition (the same for
    every adaptation method, so methods are compared on the same stream)."""
    name, severity = condition["name"], condition["severity"]
    return derive_seed(run["study"], run["seed"], "stream", name, severity)


def adapt(method: dict, model, x, labels, *, seed: int, stream_seed: int):
    """The logits of one method setting (``name`` and its parameters) on the test images ``x``,
    in ``x``'s order. A method with a ``stream`` sees the images in that order
    (corruptlab.eval.adaptation.stream_order); its outputs are put back in the test set's order."""
    import torch

    from corruptlab.eval.adaptation import METHODS, stream_order

    params = {k: method[k] for k in METHOD_COLUMNS if k in method and k != "stream"}
    fn = METHODS.get(method["name"])
    kwargs = {"batch_size": 1000, "lr": 1e-3, "steps": 1, **params}
    if "stream" not in method:
        return fn(model, x, seed=seed, **kwargs)
    order = stream_order(labels, method["stream"], stream_seed).to(x.device)
    logits = fn(model, x.index_select(0, order), seed=seed, **kwargs)
    out = torch.empty_like(logits)
    out[order] = logits
    return out
