"""rule gallery: one test digit under every registered corruption and severity."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

from corruptlab.data.datasets import load_prepared
from corruptlab.report.style import save_figure
from corruptlab.report.gallery import gallery_figure
from corruptlab.core.logs import end_job, job_log

with job_log(snakemake.log[0]):
    data = load_prepared(snakemake.input.data)
    fig = gallery_figure(data["test_images"][0], seed=0)
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)

end_job()  # outputs written: exit without the interpreter's slow teardown
