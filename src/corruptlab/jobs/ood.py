"""The ood rule's job: a trained run's OOD detection per OOD set and score."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from corruptlab.eval.evaluation import load_run
from corruptlab.eval.ood import load_ood_set, ood_set_name

log = logging.getLogger("corruptlab")


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
    corruptlab.eval.ood.ROC_GRID (``roc_fpr``, ``roc_tpr``). The in-distribution set is the clean
    test split of the classes the run was trained on."""
    from corruptlab.data.datasets import normalize
    from corruptlab.eval.ood import ROC_GRID, SCORES, ood_metrics, roc_points
    from corruptlab.train.training import predict

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
