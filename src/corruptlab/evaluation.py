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
    which must have been made from this very dataset (its content hash is checked); restricted
    to the dataset's ``in_classes`` when it has them."""
    import torch

    from corruptlab.datasets import restrict_labels

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

    from corruptlab.datasets import load_prepared
    from corruptlab.devices import configure_torch, resolve_device
    from corruptlab.io import read_json
    from corruptlab.models import build_model

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
TEXT_KEYS = ("condition", "method", "method_id", "tta_stream")  # text columns of a row's key


def _constant(n: int, value: Any, text: bool) -> np.ndarray:
    """A column of ``n`` copies of ``value``: text (None = missing) or a number (NaN)."""
    if text:
        return np.full(n, value, dtype=object)
    return np.full(n, np.nan if value is None else value)


def stream_seed(run: dict, condition: dict) -> int:
    """The seed of the shuffled test stream of one run under one test condition (the same for
    every adaptation method, so methods are compared on the same stream)."""
    name, severity = condition["name"], condition["severity"]
    return derive_seed(run["study"], run["seed"], "stream", name, severity)


def adapt(method: dict, model, x, labels, *, seed: int, stream_seed: int):
    """The logits of one method setting (``name`` and its parameters) on the test images ``x``,
    in ``x``'s order. A method with a ``stream`` sees the images in that order
    (corruptlab.adaptation.stream_order); its outputs are put back in the test set's order."""
    import torch

    from corruptlab.adaptation import METHODS, stream_order

    params = {k: method[k] for k in ("lr", "batch_size", "steps") if k in method}
    fn = METHODS.get(method["name"])
    kwargs = {"batch_size": 1000, "lr": 1e-3, "steps": 1, **params}
    if "stream" not in method:
        return fn(model, x, seed=seed, **kwargs)
    order = stream_order(labels, method["stream"], stream_seed).to(x.device)
    logits = fn(model, x.index_select(0, order), seed=seed, **kwargs)
    out = torch.empty_like(logits)
    out[order] = logits
    return out


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
    ``batch_size``, ``steps``, ``stream``), in the configured order, which the rows keep as
    ``method_order`` (0 = the first configured setting). A condition with ``family: train`` is
    ``n`` examples of the run's training set as trained (its ``labels`` file; a seeded random
    subset, memorization.example_subset). Defaults: the clean test set, no adaptation."""
    from corruptlab.adaptation import method_id
    from corruptlab.training import normalize

    conditions = conditions or [{"name": "clean", "severity": 0}]
    methods = methods or [{"name": "source"}]
    record, saved, model, data, device = load_run(run_json, data_path, model_path, device, threads)
    run = record["run"]
    seed = derive_seed(run["study"], run["seed"], "adaptation")
    rows, preds = [], []
    for condition in conditions:
        if condition.get("family") == "train":  # the run's own training examples (memorization)
            from corruptlab.pipeline import training_examples

            mean, std = saved["mean"], saved["std"]
            n = condition["n"]
            positions, x, labels = training_examples(run, data, condition["labels"], mean, std, n)
            x = x.to(device)
        else:
            positions = None
            images, labels = load_condition(condition, data)
            x = normalize(images, saved["mean"], saved["std"]).to(device)
        for order, method in enumerate(methods):
            logits = adapt(
                method, model, x, labels, seed=seed, stream_seed=stream_seed(run, condition)
            )
            metrics, per_example = evaluate_logits(logits, labels.to(device))
            if positions is not None:  # example = its position in the training set
                per_example["index"] = positions
            key = {
                "condition": condition["name"],
                "severity": condition["severity"],
                "method": method["name"],
                "method_id": method_id(method),
                "method_order": order,
                **{f"tta_{k}": method.get(k) for k in METHOD_COLUMNS},
            }
            rows.append({"run_id": run["run_id"], **key, **metrics})
            n = len(labels)
            constant = {k: _constant(n, v, k in TEXT_KEYS) for k, v in key.items()}
            preds.append({**constant, **per_example})
            log.info(
                "%s s%d %s: %s",
                condition["name"],
                condition["severity"],
                key["method_id"],
                {k: round(v, 4) for k, v in metrics.items()},
            )
    columns = {k: np.concatenate([np.asarray(p[k]) for p in preds]) for k in preds[0]}
    return rows, columns


# --- out-of-distribution detection --------------------------------------------------------------

OOD_FAMILIES = ("synthetic", "corruption", "dataset", "held_out")


def ood_set_name(spec: dict) -> str:
    """The name of an OOD set in tables: the synthetic set's, ``<corruption>_s<severity>``, the
    dataset's, or ``held_out_classes``."""
    if spec["family"] == "corruption":
        return f"{spec['name']}_s{spec['severity']}"
    return spec["name"]


def load_ood_set(spec: dict, data: dict) -> Any:
    """The uint8 images [N, H, W] of one OOD set for a run trained on ``data``.

    ``spec["family"]`` is ``synthetic`` (a corruptlab.ood.OOD_SETS entry, as many images as the
    test set, drawn with a seed of the dataset and set alone so every run sees the same images),
    ``corruption`` (a corrupted test set file, ``path``), ``dataset`` (the test split of another
    prepared dataset, ``path``) or ``held_out`` (the test images of the classes the run was not
    trained on)."""
    from corruptlab.ood import OOD_SETS

    family = spec.get("family")
    if family == "synthetic":
        seed = derive_seed(data["name"], "ood", spec["name"])
        return OOD_SETS.get(spec["name"])(data, len(data["test_labels"]), seed)
    if family == "corruption":
        images, _ = load_condition({"name": spec["name"], "path": spec["path"]}, data)
        return images
    if family == "dataset":
        from corruptlab.datasets import load_prepared

        other = load_prepared(spec["path"])
        if tuple(other["test_images"].shape[1:]) != tuple(data["test_images"].shape[1:]):
            raise ValueError(
                f"OOD dataset {other['name']!r} has images of shape "
                f"{tuple(other['test_images'].shape[1:])}, the model was trained on "
                f"{tuple(data['test_images'].shape[1:])}"
            )
        return other["test_images"]
    if family == "held_out":
        if "held_out_images" not in data:
            raise ValueError("the held_out OOD set needs a study trained on in_classes")
        return data["held_out_images"]
    raise ValueError(f"unknown OOD set family {family!r}; accepted: {', '.join(OOD_FAMILIES)}")


def ood_job(
    run_json: str,
    data_path: str,
    model_path: str,
    sets: list[dict],
    scores: list[str] | None = None,
    device: str = "auto",
    threads: int = 1,
) -> list[dict]:
    """OOD detection by one trained run: a row per (OOD set, score) with AUROC, FPR at 95% TPR,
    AUPR-In, AUPR-Out, the in-distribution (clean test) accuracy and the ROC curve read at
    corruptlab.ood.ROC_GRID (``roc_fpr``, ``roc_tpr``). The in-distribution set is the clean
    test split of the classes the run was trained on."""
    from corruptlab.ood import ROC_GRID, SCORES, ood_metrics, roc_points
    from corruptlab.training import normalize, predict

    record, saved, model, data, device = load_run(run_json, data_path, model_path, device, threads)
    scores = list(scores or SCORES.names())

    def score_all(images) -> tuple[dict[str, np.ndarray], Any]:
        logits = predict(model, normalize(images, saved["mean"], saved["std"]).to(device))
        return {name: SCORES.get(name)(logits).cpu().numpy() for name in scores}, logits

    s_in, logits_in = score_all(data["test_images"])
    in_accuracy = float((logits_in.argmax(1).cpu() == data["test_labels"]).double().mean())
    rows = []
    for spec in sets:
        s_out, _ = score_all(load_ood_set(spec, data))
        for name in scores:
            metrics = ood_metrics(s_in[name], s_out[name])
            rows.append(
                {
                    "run_id": record["run"]["run_id"],
                    "ood_family": spec["family"],
                    "ood_set": ood_set_name(spec),
                    "score": name,
                    **metrics,
                    "in_accuracy": in_accuracy,
                    "roc_fpr": ROC_GRID.tolist(),
                    "roc_tpr": roc_points(s_in[name], s_out[name]).tolist(),
                }
            )
            log.info(
                "%s %s: AUROC %.4f, FPR95 %.4f",
                ood_set_name(spec),
                name,
                metrics["auroc"],
                metrics["fpr95"],
            )
    return rows
