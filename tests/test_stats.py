"""Confidence intervals over seeds (corruptlab.report.stats) against hand-computed values."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats as sps

from corruptlab.report.stats import LEVEL, diff_ci, mean_ci


def t_quantile_df2(p: float) -> float:
    """Student t quantile with 2 degrees of freedom in closed form: (2p - 1) / sqrt(2p(1 - p))."""
    return (2 * p - 1) / math.sqrt(2 * p * (1 - p))


# two-sided 95% and 90% quantiles with 2 degrees of freedom
T_975_DF2 = t_quantile_df2(0.975)
T_950_DF2 = t_quantile_df2(0.95)

KEYS = {"n", "mean", "std", "ci95_low", "ci95_high"}


def test_level_is_95_percent():
    assert LEVEL == 0.95


def test_t_table_values():
    # printed t tables: t(0.975, 2) = 4.303, t(0.95, 2) = 2.920
    assert T_975_DF2 == pytest.approx(4.3026527297, abs=1e-9)
    assert T_950_DF2 == pytest.approx(2.9199855804, abs=1e-9)
    assert sps.t.ppf(0.975, 2) == pytest.approx(T_975_DF2, abs=1e-12)


# ----------------------------------------------------------------------------------- mean_ci


def test_mean_ci_three_values_by_hand():
    out = mean_ci([0.8, 0.9, 1.0])
    assert set(out) == KEYS
    assert out["n"] == 3
    assert out["mean"] == pytest.approx(0.9, abs=1e-15)
    # squared deviations 0.01 + 0 + 0.01 over n - 1 = 2 -> variance 0.01
    assert out["std"] == pytest.approx(0.1, abs=1e-15)
    half = T_975_DF2 * 0.1 / math.sqrt(3)
    assert half == pytest.approx(0.2484137712, abs=1e-10)
    assert out["ci95_low"] == pytest.approx(0.9 - half, abs=1e-12)
    assert out["ci95_high"] == pytest.approx(0.9 + half, abs=1e-12)


def test_mean_ci_agrees_with_scipy_one_sample_t_interval():
    values = [0.91, 0.87, 0.93, 0.95, 0.89]
    ci = sps.ttest_1samp(values, 0.0).confidence_interval(0.95)
    out = mean_ci(values)
    assert out["n"] == 5
    assert out["ci95_low"] == pytest.approx(ci.low, abs=1e-12)
    assert out["ci95_high"] == pytest.approx(ci.high, abs=1e-12)


def test_mean_ci_other_level_uses_its_quantile():
    out = mean_ci([0.8, 0.9, 1.0], level=0.90)
    half = T_950_DF2 * 0.1 / math.sqrt(3)
    assert out["ci95_low"] == pytest.approx(0.9 - half, abs=1e-12)
    assert out["ci95_high"] == pytest.approx(0.9 + half, abs=1e-12)


def test_mean_ci_single_value_has_nan_spread():
    out = mean_ci([0.75])
    assert out["n"] == 1
    assert out["mean"] == 0.75
    assert math.isnan(out["std"])
    assert math.isnan(out["ci95_low"])
    assert math.isnan(out["ci95_high"])


@pytest.mark.parametrize("values", [[], [math.nan, math.nan]])
def test_mean_ci_no_values_is_all_nan(values):
    out = mean_ci(values)
    assert out["n"] == 0
    assert all(math.isnan(out[k]) for k in KEYS - {"n"})


def test_mean_ci_ignores_nan_inputs():
    out = mean_ci([math.nan, 0.8, 0.9, math.nan, 1.0])
    assert out["n"] == 3
    assert out["mean"] == pytest.approx(0.9, abs=1e-15)
    assert out["std"] == pytest.approx(0.1, abs=1e-15)
    half = T_975_DF2 * 0.1 / math.sqrt(3)
    assert out["ci95_low"] == pytest.approx(0.9 - half, abs=1e-12)
    assert out["ci95_high"] == pytest.approx(0.9 + half, abs=1e-12)
    # a single value left after dropping NaN: n = 1, no spread
    one = mean_ci([math.nan, 0.6])
    assert one["n"] == 1 and one["mean"] == 0.6 and math.isnan(one["ci95_high"])


def test_mean_ci_constant_values_give_zero_width():
    out = mean_ci([0.5, 0.5, 0.5, 0.5])
    assert out["n"] == 4
    assert out["std"] == 0.0
    assert out["ci95_low"] == out["ci95_high"] == 0.5


def test_mean_ci_accepts_numpy_arrays():
    out = mean_ci(np.array([2.0, 4.0]))
    # std = sqrt(2); half = t(0.975, 1) * sqrt(2) / sqrt(2), t with 1 df = tan(pi (p - 1/2))
    t1 = math.tan(math.pi * 0.475)
    assert t1 == pytest.approx(12.706204736174707, abs=1e-9)
    assert out["std"] == pytest.approx(math.sqrt(2.0), abs=1e-14)
    assert out["ci95_low"] == pytest.approx(3.0 - t1, abs=1e-9)
    assert out["ci95_high"] == pytest.approx(3.0 + t1, abs=1e-9)


# ----------------------------------------------------------------------------------- diff_ci


def test_diff_ci_welch_by_hand():
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 9.0]
    # a: mean 2.5, variance 5/3 -> var of mean 5/12; b: mean 5, variance 13 -> 13/3
    va, vb = Fraction(5, 12), Fraction(13, 3)
    df = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 2)
    assert df == Fraction(9747, 4081)
    half = sps.t.ppf(0.975, float(df)) * math.sqrt(float(va + vb))
    out = diff_ci(a, b)
    assert out["n"] == 3
    assert out["mean"] == pytest.approx(-2.5, abs=1e-15)
    assert out["ci95_low"] == pytest.approx(-2.5 - half, abs=1e-10)
    assert out["ci95_high"] == pytest.approx(-2.5 + half, abs=1e-10)
    assert "std" not in out


def test_diff_ci_agrees_with_scipy_welch_interval():
    a = [0.71, 0.74, 0.69, 0.73, 0.70]
    b = [0.80, 0.79, 0.83]
    ci = sps.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    out = diff_ci(a, b)
    assert out["mean"] == pytest.approx(np.mean(a) - np.mean(b), abs=1e-15)
    assert out["ci95_low"] == pytest.approx(ci.low, abs=1e-12)
    assert out["ci95_high"] == pytest.approx(ci.high, abs=1e-12)


def test_diff_ci_zero_variance_is_degenerate_at_the_difference():
    out = diff_ci([0.75, 0.75, 0.75], [0.5, 0.5])
    assert out["n"] == 2
    assert out["mean"] == 0.25
    assert out["ci95_low"] == 0.25
    assert out["ci95_high"] == 0.25


def test_diff_ci_one_sample_constant_uses_the_other_variance():
    # va = 0, so df = n_b - 1 = 2 and se = std(b) / sqrt(3) = 0.1 / sqrt(3)
    out = diff_ci([1.0, 1.0, 1.0], [0.8, 0.9, 1.0])
    half = T_975_DF2 * 0.1 / math.sqrt(3)
    assert out["mean"] == pytest.approx(0.1, abs=1e-15)
    assert out["ci95_low"] == pytest.approx(0.1 - half, abs=1e-12)
    assert out["ci95_high"] == pytest.approx(0.1 + half, abs=1e-12)


def test_diff_ci_ignores_nan_and_needs_two_per_side():
    out = diff_ci([0.9, math.nan, 0.7], [0.5, math.nan])
    assert out["n"] == 1
    assert out["mean"] == pytest.approx(0.3, abs=1e-15)
    assert math.isnan(out["ci95_low"]) and math.isnan(out["ci95_high"])


def test_diff_ci_empty_side_is_nan():
    out = diff_ci([], [0.5, 0.6])
    assert out["n"] == 0
    assert math.isnan(out["mean"])
    assert math.isnan(out["ci95_low"]) and math.isnan(out["ci95_high"])


def test_spearman_by_hand_and_against_scipy():
    from scipy.stats import spearmanr

    from corruptlab.report.stats import spearman

    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks a = 1, 2, 3; b = 1, 3, 2: 1 - 6 * (0 + 1 + 1) / (3 * 8) = 0.5
    assert spearman([0.1, 0.5, 0.9], [5, 9, 7]) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    entropy = rng.random(200)
    wrong = rng.random(200) < entropy  # booleans: many ties, as in the claim that uses it
    assert spearman(entropy, wrong) == pytest.approx(spearmanr(entropy, wrong).statistic)
    assert math.isnan(spearman([1, 2, 3], [5, 5, 5]))
    with pytest.raises(ValueError, match="spearman of 3 and 2 values"):
        spearman([1, 2, 3], [1, 2])
