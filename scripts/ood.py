"""rule ood (and ood_seeds*): each run of a pack (a single run is a pack of one) scored against
every OOD set: detection metrics and ROC curves per OOD set and score."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

from corruptlab.core.gpus import gpu_lease
from corruptlab.core.io import write_parquet
from corruptlab.core.logs import end_job, job_log
from corruptlab.jobs.ood import ood_job

params = snakemake.params
with job_log(snakemake.log[0]), gpu_lease(params.device):
    for i in range(len(params.seeds)):
        rows = ood_job(
            snakemake.input[f"run_{i}"],
            snakemake.input.data,
            snakemake.input[f"model_{i}"],
            sets=params.sets,
            scores=params.scores,
            device=params.device,
            threads=snakemake.threads,
        )
        write_parquet(rows, snakemake.output[f"ood_{i}"])

end_job()  # outputs written: exit without the interpreter's slow teardown
