"""rule soft_targets (and soft_targets_seeds*): each teacher run's logits on the training split
(a pack of seeds; a single run is a pack of one), read by its students."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

from corruptlab.core.gpus import gpu_lease
from corruptlab.core.logs import end_job, job_log
from corruptlab.jobs.soft_targets import soft_targets_job

params = snakemake.params
n_runs = sum(1 for key in snakemake.output.keys() if key.startswith("train_logits_"))
with job_log(snakemake.log[0]), gpu_lease(params.device):
    for i in range(n_runs):
        soft_targets_job(
            snakemake.input[f"run_{i}"],
            snakemake.input.data,
            snakemake.input[f"model_{i}"],
            snakemake.output[f"train_logits_{i}"],
            device=params.device,
            threads=snakemake.threads,
        )

end_job()  # outputs written: exit without the interpreter's slow teardown
