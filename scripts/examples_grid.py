"""rule examples_grid: the hardest and easiest examples of a memorization study, as images."""

import _src  # noqa: F401, I001 (src/ on sys.path; must come first)

import pandas as pd

from corruptlab.data.datasets import load_prepared
from corruptlab.report.figures import examples_grid, save_figure
from corruptlab.core.logs import end_job, job_log
from corruptlab.data.noise import load_noisy_labels

with job_log(snakemake.log[0]):
    data = load_prepared(snakemake.input.data)
    images = {}
    for variant, labels in zip(snakemake.params.variants, snakemake.input.labels, strict=True):
        if snakemake.params.examples == "test":
            images[variant] = data["test_images"].numpy()
            continue
        noisy = load_noisy_labels(labels)
        if noisy.n_synthetic:  # randX trains on noise images: nothing to show
            continue
        images[variant] = data["train_images"].numpy()[noisy.indices]  # by training position
    fig = examples_grid(pd.read_parquet(snakemake.input.p_correct), images)
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)

end_job()  # outputs written: exit without the interpreter's slow teardown
