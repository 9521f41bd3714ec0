"""rules train_seeds*: several seeds of one configuration trained in one job (seeds_per_job;
one after another or together, train.packing); writes every seed's usual outputs (resumes from
the checkpoints after a kill)."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

from corruptlab.gpus import gpu_lease
from corruptlab.logs import end_job, job_log
from corruptlab.pipeline import PACK_FILES, train_pack_job

runs = snakemake.params.runs
outs = [{key: snakemake.output[f"{key}{run['seed']}"] for key in PACK_FILES} for run in runs]
with job_log(snakemake.log[0]) as stream, gpu_lease(runs[0]["device"]):
    train_pack_job(
        runs,
        snakemake.input.data,
        list(snakemake.input.labels),
        outs,
        threads=snakemake.threads,
        progress_file=stream,
        packing=snakemake.params.packing,
    )

end_job()  # outputs written: exit without the interpreter's slow teardown
