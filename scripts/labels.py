"""rule labels: the noisy training labels of one (noise spec, seed), as indices and labels."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

from corruptlab.logs import end_job, job_log
from corruptlab.pipeline import make_labels

with job_log(snakemake.log[0]):
    make_labels(
        snakemake.input.data,
        snakemake.params.spec,
        study=snakemake.wildcards.study,
        seed=int(snakemake.wildcards.seed),
        out_path=snakemake.output[0],
        in_classes=snakemake.params.in_classes,
    )

end_job()  # outputs written: exit without the interpreter's slow teardown
