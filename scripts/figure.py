"""rule figure: one of a study's figures, drawn by its study kind, as PNG and PDF."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

from corruptlab.core.logs import end_job, job_log
from corruptlab.jobs.report import make_figure

with job_log(snakemake.log[0]):
    make_figure(
        snakemake.wildcards.figure,
        snakemake.params.study,
        dict(snakemake.input.items()),
        snakemake.params.files,
        snakemake.output.png,
        snakemake.output.pdf,
        kinds=snakemake.params.kinds,
    )

end_job()  # outputs written: exit without the interpreter's slow teardown
