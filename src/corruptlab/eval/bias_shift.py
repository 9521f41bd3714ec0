"""The bias shift of Hinton et al. 2015 (section 3): a student that never saw some classes in
its transfer set gets a constant added to the output biases (logits) of some classes: raised
for the omitted 3 (by 3.5 in the paper), lowered for the kept 7 and 8 (by 7.6). The paper
chose the shift on the test set; here it is chosen on the validation split, and the test set
only measures it. Light: numpy only (logits are numpy arrays or tensors converted by the
caller).
"""

from __future__ import annotations

import numpy as np

# the shifts tried: -20 to 20 in steps of 0.1 (the paper's 3.5 and -7.6 are on it)
GRID = np.round(np.arange(-200, 201) / 10.0, 1)


def shift_logits(logits: np.ndarray, classes: list[int], delta: float) -> np.ndarray:
    """``logits`` [N, C] with ``delta`` added to the columns ``classes`` (a copy)."""
    out = np.array(logits, dtype=np.float64, copy=True)
    out[:, list(classes)] += delta
    return out


def choose_shift(
    logits: np.ndarray, labels: np.ndarray, classes: list[int], grid: np.ndarray = GRID
) -> float:
    """The shift of ``classes``' logits, out of ``grid``, with the highest accuracy on
    (``logits`` [N, C], ``labels`` [N]), meant to be the validation split; among equally good
    shifts the one closest to 0 (then the smaller)."""
    if not classes:
        return 0.0
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    acc = np.array([(shift_logits(logits, classes, d).argmax(1) == labels).mean() for d in grid])
    best = np.flatnonzero(acc == acc.max())
    order = sorted(best, key=lambda i: (abs(grid[i]), grid[i]))
    return float(grid[order[0]])
