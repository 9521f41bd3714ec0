"""Corrupted test sets: made once per (dataset, corruption, severity) by the testset rule and
shared by every run of every study.

Each test set is one draw of its corruption's randomness (noise, blur kernels, positions),
shared by all runs: confidence intervals over training seeds leave out the variance of that
draw. The seed depends on the dataset and the corruption, not on the severity, so that the
corruptions' designed nesting holds across the files (the pixels impulse noise hits at one
severity are hit at every higher one; the same noise field grows with severity)."""

from __future__ import annotations

import logging

from corruptlab.seeding import derive_seed

log = logging.getLogger("corruptlab")


def testset_seed(dataset: str, corruption: str) -> int:
    """The seed of a corruption's test sets of a dataset, the same at every severity."""
    return derive_seed(dataset, "testset", corruption)


def make_testset(data_path: str, corruption: str, severity: int, out_path: str) -> None:
    """Corrupt the clean test split once; every run of every study evaluates on this file."""
    from corruptlab.corruptions import corrupt
    from corruptlab.datasets import load_prepared
    from corruptlab.io import torch_save

    data = load_prepared(data_path)
    seed = testset_seed(data["name"], corruption)
    images = corrupt(data["test_images"], corruption, severity, seed)
    log.info("%s at severity %d: %d test images (seed %d)", corruption, severity, len(images), seed)
    torch_save(
        {
            "images": images,
            "labels": data["test_labels"],
            "corruption": corruption,
            "severity": severity,
            "seed": seed,
            "dataset_hash": data["content_hash"],
        },
        out_path,
    )
