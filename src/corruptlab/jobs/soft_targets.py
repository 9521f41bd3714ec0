"""The soft_targets rule's job: a trained run's logits on every image of the training split
(float32 [N, C], in the split's order, the model in eval mode: no dropout, no jitter), written
once per run as ``train_logits.npy`` in its run directory. Students that distil from the run
read it through their ``inputs`` (corruptlab.jobs.train.transfer_set). Callable without
Snakemake (the tests do)."""

from __future__ import annotations

import logging

log = logging.getLogger("corruptlab")


def soft_targets_job(
    run_json: str, data_path: str, model_path: str, out: str, device: str = "auto", threads: int = 1
):
    """Write the run's logits on the training split to ``out`` (atomically); returns them."""
    from corruptlab.core.io import write_npy
    from corruptlab.data.datasets import normalize
    from corruptlab.eval.evaluation import load_run
    from corruptlab.train.training import predict

    record, saved, model, data, device = load_run(run_json, data_path, model_path, device, threads)
    x = normalize(data["train_images"], saved["mean"], saved["std"]).to(device)
    logits = predict(model, x).float().cpu().numpy()
    write_npy(logits, out)
    accuracy = float((logits.argmax(1) == data["train_labels"].numpy()).mean())
    log.info(
        "%s: logits on the %d training images (accuracy on their clean labels %.4f) -> %s",
        record["run"]["run_id"],
        len(logits),
        accuracy,
        out,
    )
    return logits
