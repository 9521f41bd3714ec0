"""rule labels (and labels_seeds*): the noisy training labels of one noise setting for each seed
of a pack (a single seed is a pack of one), as indices and labels."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

from corruptlab.core.logs import end_job, job_log
from corruptlab.jobs.labels import make_labels

with job_log(snakemake.log[0]):
    for i, seed in enumerate(snakemake.params.seeds):
        make_labels(
            snakemake.input.data,
            snakemake.params.spec,
            study=snakemake.wildcards.study,
            seed=seed,
            out_path=snakemake.output[f"labels_{i}"],
            in_classes=snakemake.params.in_classes,
        )

end_job()  # outputs written: exit without the interpreter's slow teardown
