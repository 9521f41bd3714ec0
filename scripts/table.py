"""rule table: one of a study's derived tables (summary, selection, claims, ...), computed by
its study kind."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

from corruptlab.core.logs import end_job, job_log
from corruptlab.jobs.report import make_table
from corruptlab.report.tables import show

with job_log(snakemake.log[0]):
    table = make_table(
        snakemake.wildcards.table,
        snakemake.params.study,
        dict(snakemake.input.items()),
        snakemake.output[0],
        kinds=snakemake.params.kinds,
    )
    if snakemake.wildcards.table == "claims":
        print(f"\nClaims of study {snakemake.wildcards.study}:\n{show(table)}\n", flush=True)

end_job()  # outputs written: exit without the interpreter's slow teardown
