"""rule table: one of a study's derived tables (summary, selection, claims, ...)."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

import pandas as pd

from corruptlab.core.io import write_parquet
from corruptlab.core.logs import end_job, job_log
from corruptlab.report import claims  # noqa: F401 (registers the table 'claims')
from corruptlab.report.tables import TABLES, show

with job_log(snakemake.log[0]):
    inputs = {name: pd.read_parquet(path) for name, path in snakemake.input.items()}
    table = TABLES.get(snakemake.wildcards.table)(inputs, snakemake.params.study)
    write_parquet(table, snakemake.output[0])
    if snakemake.wildcards.table == "claims":
        print(f"\nClaims of study {snakemake.wildcards.study}:\n{show(table)}\n", flush=True)

end_job()  # outputs written: exit without the interpreter's slow teardown
