"""rule runs_table: the tidy table of a study, one row per (run, condition)."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

from corruptlab.core.io import write_parquet
from corruptlab.core.logs import end_job, job_log
from corruptlab.report.tables import runs_table

with job_log(snakemake.log[0]):
    write_parquet(runs_table(snakemake.input.runs, snakemake.input.evals), snakemake.output[0])

end_job()  # outputs written: exit without the interpreter's slow teardown
