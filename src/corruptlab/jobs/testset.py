"""The testset rule's job: the clean test split corrupted once, shared by every run of every
study (see corruptlab.data.testsets)."""

from __future__ import annotations

import logging

from corruptlab.data.testsets import testset_seed

log = logging.getLogger("corruptlab")


def make_testset(data_path: str, corruption: str, severity: int, out_path: str) -> None:
    """Corrupt the clean test split once; every run of every study evaluates on this file."""
    from corruptlab.core.io import torch_save
    from corruptlab.data.corruptions import corrupt
    from corruptlab.data.datasets import load_prepared

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
