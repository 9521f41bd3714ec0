"""Evaluation metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from corruptlab.eval.metrics import (
    ECE_BINS,
    METRICS,
    accuracy,
    compute_metrics,
    ece,
    entropies,
    entropy,
    expected_calibration_error,
    nll,
)

LN3 = math.log(3.0)
LN9 = math.log(9.0)


def t(values, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype)


def ece_of(conf, correct, **kw) -> float:
    return expected_calibration_error(t(conf), t(correct), **kw)


def test_registered_metrics():
    assert METRICS.names() == ["accuracy", "nll", "entropy", "ece"]
    assert ECE_BINS == 15


# --------------------------------------------------------------------------------- accuracy


def test_accuracy_on_four_examples():
    logits = t([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 1.0, 5.0], [4.0, 0.0, 1.0]])
    labels = torch.tensor([0, 1, 1, 0])  # predictions 0, 1, 2, 0: three of four right
    got = accuracy(logits, labels)
    assert isinstance(got, float)
    assert got == 0.75
    assert accuracy(logits, torch.tensor([1, 0, 0, 1])) == 0.0
    assert accuracy(logits, torch.tensor([0, 1, 2, 0])) == 1.0


# -------------------------------------------------------------------------------------- nll


def test_nll_hand_computed():
    # softmax([0, ln 3]) = [1/4, 3/4]
    logits = t([[0.0, LN3], [0.0, LN3]])
    labels = torch.tensor([1, 0])
    expected = (math.log(4 / 3) + math.log(4)) / 2  # = ln(16/3) / 2
    got = nll(logits, labels)
    assert isinstance(got, float)
    assert got == pytest.approx(expected, abs=1e-12)
    assert got == pytest.approx(0.8369882167858358, abs=1e-12)


def test_nll_of_uniform_logits_is_log_c():
    assert nll(torch.zeros(3, 7), torch.tensor([0, 3, 6])) == pytest.approx(math.log(7), abs=1e-12)


def test_nll_is_computed_in_double_precision():
    # float32 logits; a float32 log-softmax would lose the 1e-10 tail
    logits = torch.tensor([[30.0, 0.0]], dtype=torch.float32)
    assert nll(logits, torch.tensor([0])) == pytest.approx(math.log1p(math.exp(-30)), rel=1e-6)


# ---------------------------------------------------------------------------------- entropy


@pytest.mark.parametrize("c", [2, 7, 10])
def test_entropy_of_uniform_logits_is_log_c(c):
    logits = torch.full((4, c), 2.5)
    got = entropy(logits, torch.zeros(4, dtype=torch.long))
    assert got == pytest.approx(math.log(c), abs=1e-12)


def test_entropy_of_near_one_hot_is_zero():
    logits = t([[50.0, 0.0, 0.0, 0.0], [0.0, 0.0, 60.0, 0.0]])
    got = entropy(logits, torch.tensor([0, 2]))
    assert 0.0 <= got < 1e-18


def test_entropies_per_example():
    logits = t([[0.0, LN3], [0.0, 0.0]])  # p = (1/4, 3/4) and (1/2, 1/2)
    h = entropies(logits)
    assert h.shape == (2,)
    h1 = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert h.dtype == torch.float64
    assert h.tolist() == pytest.approx([h1, math.log(2)], abs=1e-12)
    assert entropy(logits, torch.tensor([0, 0])) == pytest.approx((h1 + math.log(2)) / 2)
    assert h1 == pytest.approx(0.5623351446188083, abs=1e-12)


# -------------------------------------------------------------------------------------- ECE


def test_ece_hand_computed_two_bins():
    # bins (14/15, 1] (acc 0.5, conf 0.95) and (8/15, 9/15] (acc 1, conf 0.55)
    got = ece_of([0.95, 0.95, 0.55, 0.55], [1, 0, 1, 1])
    assert isinstance(got, float)
    assert got == pytest.approx(0.5 * abs(0.5 - 0.95) + 0.5 * abs(1 - 0.55), abs=1e-12)
    assert got == pytest.approx(0.45, abs=1e-12)


def test_ece_hand_computed_three_bins():
    # 0.1 -> (1/15, 2/15]; 0.3, 0.3 -> (4/15, 5/15]; 0.9 -> (13/15, 14/15]
    got = ece_of([0.1, 0.3, 0.3, 0.9], [0, 1, 0, 1])
    assert got == pytest.approx(0.25 * 0.1 + 0.5 * 0.2 + 0.25 * 0.1, abs=1e-12)
    assert got == pytest.approx(0.15, abs=1e-12)


def test_ece_accepts_boolean_correctness():
    conf = t([0.95, 0.95, 0.55, 0.55])
    correct = torch.tensor([True, False, True, True])
    assert expected_calibration_error(conf, correct) == pytest.approx(0.45, abs=1e-12)


def test_ece_perfectly_calibrated_is_zero():
    # 10 at confidence 0.7 with 7 right; 4 at 0.25 with 1 right; 5 at 0.8 with 4 right
    conf = [0.7] * 10 + [0.25] * 4 + [0.8] * 5
    correct = [1] * 7 + [0] * 3 + [1] + [0] * 3 + [1] * 4 + [0]
    assert ece_of(conf, correct) == pytest.approx(0.0, abs=1e-12)
    assert ece_of([1.0, 1.0], [1, 1]) == 0.0


def test_ece_overconfident_everywhere():
    assert ece_of([1.0, 1.0, 1.0, 1.0], [0, 0, 0, 0]) == 1.0
    assert ece_of([0.0, 0.0], [1, 1]) == 1.0  # confidence 0 goes to the first bin


def test_ece_bin_edge_goes_to_the_lower_bin():
    # 0.2 = 3/15 is the upper edge of (2/15, 3/15], the bin of 0.19
    # same bin: acc 0.5, conf 0.195 -> 0.305; were 0.2 in the next bin: (0.8 + 0.19) / 2 = 0.495
    assert ece_of([0.2, 0.19], [1, 0]) == pytest.approx(abs(0.5 - 0.195), abs=1e-12)
    # 1.0 is in the last bin (14/15, 1] together with 0.95
    assert ece_of([1.0, 0.95], [1, 0]) == pytest.approx(abs(0.5 - 0.975), abs=1e-12)


@pytest.mark.parametrize("k", range(1, 15))
def test_ece_every_inner_edge_goes_to_the_lower_bin(k):
    edge = k / ECE_BINS
    below = edge - 0.01  # same bin (k-1)/15 < below < edge
    same_bin = abs(0.5 - (edge + below) / 2)
    split = (abs(1 - edge) + abs(0 - below)) / 2
    assert abs(same_bin - split) > 0.01  # the case tells the two apart
    assert ece_of([edge, below], [1, 0]) == pytest.approx(same_bin, abs=1e-12)


def test_ece_number_of_bins():
    conf, correct = [0.95, 0.95, 0.55, 0.55], [1, 0, 1, 1]
    # one bin: |mean accuracy - mean confidence| = |0.75 - 0.75|
    assert ece_of(conf, correct, n_bins=1) == pytest.approx(0.0, abs=1e-12)
    # two bins (0, 0.5], (0.5, 1]: everything in the upper one
    assert ece_of([0.3, 0.9], [1, 1], n_bins=2) == pytest.approx(0.5 * 0.7 + 0.5 * 0.1)


def test_ece_from_logits():
    # softmax([0, ln 3]) max = 0.75 (class 1); softmax([ln 9, 0]) max = 0.9 (class 0)
    logits = t([[0.0, LN3], [0.0, LN3], [LN9, 0.0]])
    labels = torch.tensor([1, 0, 0])  # correct: 1, 0, 1
    expected = 2 / 3 * abs(0.5 - 0.75) + 1 / 3 * abs(1 - 0.9)
    assert ece(logits, labels) == pytest.approx(expected, abs=1e-12)
    assert ece(logits, labels) == pytest.approx(0.2, abs=1e-12)


# ---------------------------------------------------------------------------- compute_metrics


def test_compute_metrics_returns_every_metric():
    logits = t([[0.0, LN3], [0.0, LN3], [LN9, 0.0], [0.0, 0.0]])
    labels = torch.tensor([1, 0, 0, 1])
    out = compute_metrics(logits, labels)
    assert list(out) == ["accuracy", "nll", "entropy", "ece"]
    assert all(isinstance(v, float) for v in out.values())
    # predictions 1, 1, 0, 0 (a tie goes to class 0): right, wrong, right, wrong
    assert out["accuracy"] == 0.5
    expected_nll = (math.log(4 / 3) + math.log(4) + math.log(10 / 9) + math.log(2)) / 4
    assert out["nll"] == pytest.approx(expected_nll, abs=1e-12)
    h75 = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    h90 = -(0.1 * math.log(0.1) + 0.9 * math.log(0.9))
    assert out["entropy"] == pytest.approx((2 * h75 + h90 + math.log(2)) / 4, abs=1e-12)
    # bins: 0.5 -> (7/15, 8/15] acc 0; 0.75 -> (11/15, 12/15] acc 0.5; 0.9 -> acc 1
    expected_ece = (0.5 + 2 * 0.25 + 0.1) / 4
    assert out["ece"] == pytest.approx(expected_ece, abs=1e-12)
