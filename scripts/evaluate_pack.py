"""rules evaluate_seeds*: the evaluate rule's work for each seed of a pack (seeds_per_job), in
one process; writes every seed's usual eval.parquet and predictions.parquet."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

from corruptlab.io import write_parquet
from corruptlab.gpus import gpu_lease
from corruptlab.logs import end_job, job_log
from corruptlab.evaluation import evaluate_job

params = snakemake.params
with job_log(snakemake.log[0]), gpu_lease(params.device):
    for seed, conditions in zip(params.seeds, params.conditions, strict=True):
        metrics, predictions = evaluate_job(
            snakemake.input[f"run{seed}"],
            snakemake.input.data,
            snakemake.input[f"model{seed}"],
            conditions=conditions,
            methods=params.methods,
            device=params.device,
            threads=snakemake.threads,
        )
        write_parquet(predictions, snakemake.output[f"predictions{seed}"])
        write_parquet(metrics, snakemake.output[f"eval{seed}"])

end_job()  # outputs written: exit without the interpreter's slow teardown
