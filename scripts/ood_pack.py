"""rules ood_seeds*: the ood rule's work for each seed of a pack (seeds_per_job), in one
process; writes every seed's usual ood.parquet."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

from corruptlab.evaluation import ood_job
from corruptlab.io import write_parquet
from corruptlab.gpus import gpu_lease
from corruptlab.logs import end_job, job_log

params = snakemake.params
with job_log(snakemake.log[0]), gpu_lease(params.device):
    for seed in params.seeds:
        rows = ood_job(
            snakemake.input[f"run{seed}"],
            snakemake.input.data,
            snakemake.input[f"model{seed}"],
            sets=params.sets,
            scores=params.scores,
            device=params.device,
            threads=snakemake.threads,
        )
        write_parquet(rows, snakemake.output[f"ood{seed}"])

end_job()  # outputs written: exit without the interpreter's slow teardown
