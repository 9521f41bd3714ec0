"""Transfer sets (study kind distillation): the part of a run's training set a student learns
from, chosen by the true class of each training image (Hinton et al. 2015: the training set
without the 3s, the "mythical 3"; only the 7s and 8s). Light: numpy only.

A transfer spec is ``{"name": ...}`` (every example), ``{"name": ..., "omit": [classes]}`` or
``{"name": ..., "keep": [classes]}``.
"""

from __future__ import annotations

import numpy as np


def transfer_mask(true_labels: np.ndarray, spec: dict | None) -> np.ndarray:
    """Which examples (bool [M]) of a training set whose images have the true classes
    ``true_labels`` belong to the transfer set ``spec`` (None: all)."""
    true_labels = np.asarray(true_labels)
    if spec is None or ("omit" not in spec and "keep" not in spec):
        return np.ones(len(true_labels), dtype=bool)
    if "omit" in spec and "keep" in spec:
        raise ValueError(f"transfer set {spec.get('name')!r}: give omit or keep, not both")
    if "omit" in spec:
        return ~np.isin(true_labels, spec["omit"])
    return np.isin(true_labels, spec["keep"])


def unseen_classes(spec: dict | None, n_classes: int) -> list[int]:
    """The classes a student on transfer set ``spec`` never sees ([] for the whole set)."""
    if spec is None:
        return []
    if "omit" in spec:
        return sorted(int(c) for c in spec["omit"])
    if "keep" in spec:
        return [c for c in range(n_classes) if c not in set(spec["keep"])]
    return []


def shifted_classes(spec: dict | None) -> list[int]:
    """The classes whose logit bias a transfer set's bias shift moves: the omitted ones (the
    paper raised the 3's bias), or the kept ones (it lowered the 7's and 8's); [] for the whole
    set."""
    if spec is None:
        return []
    return sorted(int(c) for c in spec.get("omit", spec.get("keep", [])))
