"""rule study_page: a study's page, results/<study>/<study>.html: its claims with their verdicts,
figures with captions and tables as HTML (corruptlab.report.page)."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

from corruptlab.core.logs import end_job, job_log
from corruptlab.jobs.page import make_page

with job_log(snakemake.log[0]):
    make_page(
        snakemake.wildcards.study,
        snakemake.params.study,
        snakemake.input.tables,
        snakemake.input.figures,
        snakemake.output[0],
        kinds=snakemake.params.kinds,
    )

end_job()  # outputs written: exit without the interpreter's slow teardown
