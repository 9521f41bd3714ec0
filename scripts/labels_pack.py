"""rules labels_seeds*: the labels rule's work for each seed of a pack (seeds_per_job), in one
process; writes every seed's usual labels file."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

from corruptlab.logs import end_job, job_log
from corruptlab.pipeline import make_labels

with job_log(snakemake.log[0]):
    for seed in snakemake.params.seeds:
        make_labels(
            snakemake.input.data,
            snakemake.params.spec,
            study=snakemake.wildcards.study,
            seed=seed,
            out_path=snakemake.output[f"labels{seed}"],
            in_classes=snakemake.params.in_classes,
        )

end_job()  # outputs written: exit without the interpreter's slow teardown
