"""The labels rule's job: the noisy training labels of one noise spec and seed."""

from __future__ import annotations

import logging

log = logging.getLogger("corruptlab")


def make_labels(
    data_path: str,
    spec: dict,
    study: str,
    seed: int,
    out_path: str,
    in_classes: list[int] | None = None,
) -> None:
    """Noisy labels of the training set (restricted to ``in_classes`` when given)."""
    from corruptlab.data.datasets import load_prepared
    from corruptlab.data.noise import (
        labels_seed,
        make_noisy_labels,
        noise_slug,
        save_noisy_labels,
    )

    data = load_prepared(data_path, in_classes=in_classes)
    slug = noise_slug(spec)
    noisy = make_noisy_labels(
        data["train_labels"].numpy(), data["n_classes"], spec, labels_seed(study, slug, seed)
    )
    log.info(
        "%s seed %d: %d training examples (%d with noise-drawn labels) from %d images",
        slug,
        seed,
        len(noisy.indices),
        int(noisy.noisy.sum()),
        len(data["train_labels"]),
    )
    save_noisy_labels(noisy, out_path)
