"""rule prepare: one compact file of uint8 images, labels and a frozen stratified split."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

from corruptlab.data.datasets import prepare, save_prepared
from corruptlab.core.logs import end_job, job_log

with job_log(snakemake.log[0]):
    data = prepare(
        snakemake.wildcards.dataset,
        raw_dir=snakemake.input.get("raw"),
        split_seed=snakemake.params.split_seed,
    )
    save_prepared(data, snakemake.output[0])

end_job()  # outputs written: exit without the interpreter's slow teardown
