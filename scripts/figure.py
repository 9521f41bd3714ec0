"""rule figure: one of a study's figures, as PNG and PDF."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

import pandas as pd

from corruptlab.report.figures import FIGURES, save_figure
from corruptlab.core.logs import end_job, job_log

with job_log(snakemake.log[0]):
    tables = {name: pd.read_parquet(path) for name, path in snakemake.input.items()}
    fig = FIGURES.get(snakemake.wildcards.figure)(tables)
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)

end_job()  # outputs written: exit without the interpreter's slow teardown
