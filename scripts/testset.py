"""rule testset: the test split under one corruption and severity, made once per dataset."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

from corruptlab.core.logs import end_job, job_log
from corruptlab.jobs.testset import make_testset

with job_log(snakemake.log[0]):
    make_testset(
        snakemake.input.data,
        snakemake.wildcards.corruption,
        int(snakemake.wildcards.severity),
        snakemake.output[0],
    )

end_job()  # outputs written: exit without the interpreter's slow teardown
