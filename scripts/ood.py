"""rule ood: one run's OOD detection metrics and ROC curves per OOD set and score."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

from corruptlab.evaluation import ood_job
from corruptlab.io import write_parquet
from corruptlab.gpus import gpu_lease
from corruptlab.logs import end_job, job_log

with job_log(snakemake.log[0]), gpu_lease(snakemake.params.device):
    rows = ood_job(
        snakemake.input.run,
        snakemake.input.data,
        snakemake.input.model,
        sets=snakemake.params.sets,
        scores=snakemake.params.scores,
        device=snakemake.params.device,
        threads=snakemake.threads,
    )
    write_parquet(rows, snakemake.output[0])

end_job()  # outputs written: exit without the interpreter's slow teardown
