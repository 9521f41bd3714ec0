"""rule download: fetch a dataset's files (config mirrors first), verifying their checksums."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

from corruptlab.data.datasets import download
from corruptlab.core.logs import end_job, job_log

with job_log(snakemake.log[0]):
    download(snakemake.wildcards.dataset, snakemake.output[0], mirrors=snakemake.params.mirrors)

end_job()  # outputs written: exit without the interpreter's slow teardown
