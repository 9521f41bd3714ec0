"""rule evaluate (and evaluate_seeds*): metrics per test condition and per-example predictions of
each run of a pack (a single run is a pack of one)."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

from corruptlab.core.gpus import gpu_lease
from corruptlab.core.io import write_parquet
from corruptlab.core.logs import end_job, job_log
from corruptlab.jobs.evaluate import evaluate_job

params = snakemake.params
with job_log(snakemake.log[0]), gpu_lease(params.device):
    for i, conditions in enumerate(params.conditions):
        metrics, predictions = evaluate_job(
            snakemake.input[f"run_{i}"],
            snakemake.input.data,
            snakemake.input[f"model_{i}"],
            conditions=conditions,
            methods=params.methods,
            device=params.device,
            threads=snakemake.threads,
        )
        write_parquet(predictions, snakemake.output[f"predictions_{i}"])
        write_parquet(metrics, snakemake.output[f"eval_{i}"])

end_job()  # outputs written: exit without the interpreter's slow teardown
