"""rule ood_runs_table: every run's OOD rows with its config, outcome and provenance."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

from corruptlab.core.io import write_parquet
from corruptlab.core.logs import end_job, job_log
from corruptlab.eval.ood import OOD_KEYS
from corruptlab.report.tables import runs_table

with job_log(snakemake.log[0]):
    table = runs_table(snakemake.input.runs, snakemake.input.evals, keys=OOD_KEYS)
    write_parquet(table, snakemake.output[0])

end_job()  # outputs written: exit without the interpreter's slow teardown
