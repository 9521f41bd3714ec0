"""The evaluate rule's job: a pack of trained runs (a single run is a pack of one) under every
test condition and adaptation method, one metrics row per (condition, method) and per-example
predictions per run."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from corruptlab.core.seeding import derive_seed
from corruptlab.eval.evaluation import (
    METHOD_COLUMNS,
    adapt,
    evaluate_logits,
    load_condition,
    load_run,
    stream_seed,
)

log = logging.getLogger("corruptlab")

TEXT_KEYS = ("condition", "method", "method_id", "tta_stream")  # text columns of a row's key


def _constant(n: int, value: Any, text: bool) -> np.ndarray:
    """A column of ``n`` copies of ``value``: text (None = missing) or a number (NaN)."""
    if text:
        return np.full(n, value, dtype=object)
    return np.full(n, np.nan if value is None else value)


def _bias_shift(condition: dict, model, data: dict, saved: dict, device) -> float:
    """A ``bias_shift`` condition's shift of its ``classes``' logits: the one with the best
    accuracy on the validation split (corruptlab.eval.bias_shift)."""
    from corruptlab.data.datasets import normalize
    from corruptlab.eval.bias_shift import choose_shift
    from corruptlab.train.training import predict

    x = normalize(data["val_images"], saved["mean"], saved["std"]).to(device)
    logits = predict(model, x).cpu().numpy()
    delta = choose_shift(logits, data["val_labels"].numpy(), condition["classes"])
    log.info("%s: bias shift %+.1f of classes %s", condition["name"], delta, condition["classes"])
    return delta


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
    subset, memorization.example_subset). A condition with ``family: bias_shift`` is the clean
    test set with its ``classes``' logits shifted by the amount best on the validation split
    (its row's ``bias_shift``). Defaults: the clean test set, no adaptation."""
    from corruptlab.data.datasets import normalize
    from corruptlab.eval.adaptation import method_id

    conditions = conditions or [{"name": "clean", "severity": 0}]
    methods = methods or [{"name": "source"}]
    record, saved, model, data, device = load_run(run_json, data_path, model_path, device, threads)
    run = record["run"]
    seed = derive_seed(run["study"], run["seed"], "adaptation")
    rows, preds = [], []
    for condition in conditions:
        if condition.get("family") == "train":  # the run's own training examples (memorization)
            from corruptlab.data.noise import training_examples

            mean, std = saved["mean"], saved["std"]
            n = condition["n"]
            positions, x, labels = training_examples(run, data, condition["labels"], mean, std, n)
            x = x.to(device)
        else:
            positions = None
            if condition.get("family") == "bias_shift":  # the clean test set, shifted below
                images, labels = data["test_images"], data["test_labels"]
            else:
                images, labels = load_condition(condition, data)
            x = normalize(images, saved["mean"], saved["std"]).to(device)
        shift = {}
        if condition.get("family") == "bias_shift":  # chosen on the validation split
            shift = {"bias_shift": _bias_shift(condition, model, data, saved, device)}
        for order, method in enumerate(methods):
            logits = adapt(
                method, model, x, labels, seed=seed, stream_seed=stream_seed(run, condition)
            )
            if shift:
                import torch

                from corruptlab.eval.bias_shift import shift_logits

                delta = shift["bias_shift"]
                shifted = shift_logits(logits.cpu().numpy(), condition["classes"], delta)
                logits = torch.from_numpy(shifted).to(logits.device)
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
            rows.append({"run_id": run["run_id"], **key, **metrics, **shift})
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
    if any("bias_shift" in row for row in rows):  # one schema for every row
        rows = [{**row, "bias_shift": row.get("bias_shift", np.nan)} for row in rows]
    columns = {k: np.concatenate([np.asarray(p[k]) for p in preds]) for k in preds[0]}
    return rows, columns
