"""rule train: one training run (resumes from its checkpoint if a previous attempt was killed)."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

from corruptlab.gpus import gpu_lease
from corruptlab.logs import end_job, job_log
from corruptlab.pipeline import train_job

# one GPU of several for this job alone (before CUDA starts); a no-op on a CPU or one GPU
with job_log(snakemake.log[0]) as stream, gpu_lease(snakemake.params.run["device"]):
    train_job(
        snakemake.params.run,
        snakemake.input.data,
        snakemake.input.labels,
        out=dict(snakemake.output.items()),
        threads=snakemake.threads,
        progress_file=stream,
    )

end_job()  # outputs written: exit without the interpreter's slow teardown
