"""Corrupted test sets: made once per (dataset, corruption, severity) by the testset rule and
shared by every run of every study.

Each test set is one draw of its corruption's randomness (noise, blur kernels, positions),
shared by all runs: confidence intervals over training seeds leave out the variance of that
draw. The seed depends on the dataset and the corruption, not on the severity, so that the
corruptions' designed nesting holds across the files (the pixels impulse noise hits at one
severity are hit at every higher one; the same noise field grows with severity)."""

from __future__ import annotations

import logging

from corruptlab.core.seeding import derive_seed

log = logging.getLogger("corruptlab")


def testset_seed(dataset: str, corruption: str) -> int:
    """The seed of a corruption's test sets of a dataset, the same at every severity."""
    return derive_seed(dataset, "testset", corruption)
