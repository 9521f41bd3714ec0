"""rule soft_targets (and soft_targets_seeds*): each teacher run's logits on the training split
(a pack of seeds; a single run is a pack of one), read by its students."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

from corruptlab.core.gpus import gpu_lease
from corruptlab.core.logs import end_job, job_log
from corruptlab.jobs.soft_targets import soft_targets_job

params = snakemake.params
with job_log(snakemake.log[0]), gpu_lease(params.device):
    for i, out in enumerate(snakemake.output):  # one logits file per run of the pack
        soft_targets_job(
            snakemake.input[f"run_{i}"],
            snakemake.input.data,
            snakemake.input[f"model_{i}"],
            out,
            device=params.device,
            threads=snakemake.threads,
        )

end_job()  # outputs written: exit without the interpreter's slow teardown
