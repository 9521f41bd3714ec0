"""rule histories_table: every run's training history (and measurements during training)."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

from corruptlab.core.io import write_parquet
from corruptlab.core.logs import end_job, job_log
from corruptlab.report.tables import histories_table

with job_log(snakemake.log[0]):
    table = histories_table(snakemake.input.runs, snakemake.input.histories)
    write_parquet(table, snakemake.output[0])

end_job()  # outputs written: exit without the interpreter's slow teardown
