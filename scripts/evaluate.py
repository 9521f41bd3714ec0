"""rule evaluate: metrics per test condition and per-example predictions of one run."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

from corruptlab.io import write_parquet
from corruptlab.gpus import gpu_lease
from corruptlab.logs import end_job, job_log
from corruptlab.evaluation import evaluate_job

with job_log(snakemake.log[0]), gpu_lease(snakemake.params.device):
    metrics, predictions = evaluate_job(
        snakemake.input.run,
        snakemake.input.data,
        snakemake.input.model,
        conditions=snakemake.params.conditions,
        methods=snakemake.params.methods,
        device=snakemake.params.device,
        threads=snakemake.threads,
    )
    write_parquet(predictions, snakemake.output.predictions)
    write_parquet(metrics, snakemake.output.metrics)

end_job()  # outputs written: exit without the interpreter's slow teardown
