"""rule train (and train_seeds*): the runs of a pack of seeds (a single run is a pack of one),
one after another or together (train.packing); each run writes its usual outputs and resumes
from its checkpoint if a previous attempt was killed."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

from corruptlab.core.gpus import gpu_lease
from corruptlab.core.logs import end_job, job_log
from corruptlab.jobs.train import RUN_FILES, train_job

runs = snakemake.params.runs
outs = [{key: snakemake.output[f"{key}_{i}"] for key in RUN_FILES} for i in range(len(runs))]
# one GPU of several for this job alone (before CUDA starts); a no-op on a CPU or one GPU
with job_log(snakemake.log[0]) as stream, gpu_lease(runs[0]["device"]):
    train_job(
        runs,
        snakemake.input.data,
        list(snakemake.input.labels),
        outs,
        threads=snakemake.threads,
        progress_file=stream,
        packing=snakemake.params.packing,
    )

end_job()  # outputs written: exit without the interpreter's slow teardown
