"""Verdicts from bounded confidence intervals (corruptlab.report.claims and .stats): each verdict
on hand-made intervals, and intervals that never leave a metric's range on the edge cases (all
seeds equal, a seed at the bound, n = 2)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from corruptlab.report.claims import (
    COLUMNS,
    VERDICTS,
    Paper,
    by_test,
    ci_verdict,
    compare,
    exact,
    not_applicable,
    reported,
    verdict_counts,
)
from corruptlab.report.stats import RANGES, bounds_of, diff_ci, difference_bounds, mean_ci
from corruptlab.report.tables import show


def ci(low, high, n=3, mean=None):
    return {
        "mean": (low + high) / 2 if mean is None else mean,
        "ci95_low": low,
        "ci95_high": high,
        "n": n,
    }


# ------------------------------------------------------------------------------ verdicts


@pytest.mark.parametrize(
    ("relation", "low", "high", "verdict"),
    [
        (">", 0.91, 0.95, "supported"),
        (">", 0.85, 0.89, "contradicted"),
        (">", 0.85, 0.95, "inconclusive"),
        (">", 0.90, 0.95, "inconclusive"),  # touches the threshold: not wholly above it
        (">", 0.85, 0.90, "contradicted"),  # wholly <= 0.9
        (">=", 0.90, 0.95, "supported"),
        (">=", 0.85, 0.8999, "contradicted"),
        ("<", -0.2, -0.1, "supported"),
        ("<", 0.1, 0.2, "contradicted"),
        ("<", -0.1, 0.1, "inconclusive"),
        ("<=", -0.1, 0.0, "supported"),
    ],
)
def test_ci_verdict_follows_the_whole_interval(relation, low, high, verdict):
    threshold = 0.9 if ">" in relation else 0.0
    got, reason = ci_verdict(ci(low, high), relation, threshold)
    assert got == verdict
    assert f"{threshold:g}" in reason


def test_fewer_than_two_seeds_is_inconclusive_and_no_value_not_applicable():
    assert ci_verdict(
        {"mean": 0.99, "n": 1, "ci95_low": math.nan, "ci95_high": math.nan}, ">", 0.9
    ) == ("inconclusive", "fewer than two seeds (n = 1): no confidence interval")
    assert ci_verdict(mean_ci([]), ">", 0.9)[0] == "not applicable"
    with pytest.raises(ValueError, match="relation '=>'; accepted: >, >=, <, <="):
        ci_verdict(ci(0, 1), "=>", 0.5)


def test_compare_row_has_every_column_criterion_and_paper():
    paper = Paper(0.99, "MNIST vs uniform noise", "Hendrycks & Gimpel 2017, Table 2", "mnist5k")
    r = compare(
        "c", "s", mean_ci([0.93, 0.95, 0.97], bounds=RANGES["auroc"]), "AUROC", ">", 0.9, "d", paper
    )
    assert list(r) == COLUMNS
    assert r["verdict"] == "supported"
    assert r["criterion"] == "AUROC > 0.9"
    assert "clipped" in r["test"] and "95%" in r["test"]
    assert (r["paper_value"], r["paper_source"], r["paper_differs"]) == (
        0.99,
        "Hendrycks & Gimpel 2017, Table 2",
        "mnist5k",
    )
    empty = compare("c", "s", mean_ci([0.95]), "AUROC", ">", 0.9)
    assert math.isnan(empty["paper_value"]) and empty["paper_source"] == ""


def test_not_applicable_keeps_a_measured_value_and_the_reason():
    r = not_applicable("c", "s", "x >= -0.02", "class_ordered stream", mean_ci([-0.5, -0.6]))
    assert r["verdict"] == "not applicable" and r["reason"] == "class_ordered stream"
    assert r["value"] == pytest.approx(-0.55) and r["n"] == 2


@pytest.mark.parametrize(
    ("p_value", "supported_if_rejected", "verdict"),
    [
        (0.001, True, "supported"),  # "unlike a Binomial": rejected
        (0.30, True, "inconclusive"),  # not rejected: the test may lack power
        (0.001, False, "contradicted"),  # "consistent with a Binomial": rejected
        (0.30, False, "supported"),
        (0.05, False, "supported"),  # p == level: not rejected
    ],
)
def test_tested_rows_name_the_test_and_level(p_value, supported_if_rejected, verdict):
    r = by_test("c", "s", p_value, 500, "chi-square GOF", 0.05, supported_if_rejected)
    assert r["verdict"] == verdict
    assert r["test"] == "chi-square GOF, level 0.05"
    assert r["value"] == p_value and r["n"] == 500
    assert f"p = {p_value:.3g}" in r["reason"]
    assert by_test("c", "s", math.nan, 0, "t", 0.05, True)["verdict"] == "not applicable"


def test_exact_rows_are_supported_or_contradicted():
    assert exact("c", "s", 0.0, "gap == 0", True)["verdict"] == "supported"
    r = exact("c", "s", 1e-3, "gap == 0", False)
    assert r["verdict"] == "contradicted" and r["test"] == "exact"


def test_reported_rows_carry_their_value_and_judge_nothing():
    s = mean_ci([0.91, 0.93, 0.92])
    paper = Paper(0.95, "MNIST, 10 epochs", "Zhou et al. 2019, Table 1")
    r = reported("AUROC per method", "gd vs noise", s, "AUROC(msp)", paper=paper)
    assert r["verdict"] == "reported" and r["criterion"] == "AUROC(msp): reported"
    assert r["value"] == pytest.approx(0.92) and r["ci95_low"] < 0.92 < r["ci95_high"]
    assert r["paper_value"] == 0.95 and r["paper_source"] == "Zhou et al. 2019, Table 1"
    assert "no direction" in r["reason"]


def test_show_prints_paper_sources_and_small_p_values_in_scientific_notation():
    paper = Paper(0.9926, "MNIST", "Hinton et al. 2015, section 3")
    blog = Paper(0.9891, "MNIST", "a blog post")
    rows = [
        reported("beside the paper", "student", mean_ci([0.98, 0.99]), "acc", paper=paper),
        reported("beside the paper", "student", mean_ci([0.98, 0.99]), "acc", paper=blog),
        by_test("Binomial fit", "real", 1.7e-36, 500, "chi-square", 0.05, False),
    ]
    text = show(pd.DataFrame(rows))
    header = text.splitlines()[0].split()
    assert header[-2:] == ["paper_value", "paper_source"]
    assert "Hinton et al. 2015, section 3" in text and "a blog post" in text
    assert "1.70e-36" in text and "0.9926" in text
    assert "0.0000" not in text


def test_verdict_counts_lists_every_verdict():
    rows = pd.DataFrame({"verdict": ["supported", "supported", "inconclusive"]})
    assert verdict_counts(rows) == {
        "supported": 2,
        "contradicted": 0,
        "inconclusive": 1,
        "not applicable": 0,
        "reported": 0,
    }
    assert verdict_counts(pd.DataFrame({"verdict": []})) == dict.fromkeys(VERDICTS, 0)


# --------------------------------------------------------------------- bounded intervals


def test_interval_is_student_t_inside_the_range():
    x = [0.93, 0.95, 0.96]
    got = mean_ci(x, bounds=(0.0, 1.0))
    ref = sps.ttest_1samp(x, 0.0).confidence_interval(0.95)
    assert (got["ci95_low"], got["ci95_high"]) == (pytest.approx(ref.low), pytest.approx(ref.high))


def test_n_2_interval_of_a_bounded_metric_is_clipped_to_its_range():
    # the case: two AUROCs near 1; Student t alone reaches past 1
    x = [0.93, 0.995]
    t = sps.ttest_1samp(x, 0.0).confidence_interval(0.95)
    assert t.high > 1 and t.low < 0.93
    got = mean_ci(x, bounds=bounds_of("auroc"))
    assert got["ci95_high"] == 1.0
    assert got["ci95_low"] == pytest.approx(max(t.low, 0.0))
    assert got["n"] == 2 and got["mean"] == pytest.approx(0.9625)
    assert ci_verdict(got, ">", 0.9)[0] == "inconclusive"  # two seeds cannot tell


def test_a_seed_at_the_bound():
    got = mean_ci([1.0, 0.98, 0.99], bounds=(0.0, 1.0))
    assert 0.0 <= got["ci95_low"] < got["mean"] < got["ci95_high"] == 1.0
    at_zero = mean_ci([0.0, 0.02, 0.01], bounds=(0.0, 1.0))
    assert at_zero["ci95_low"] == 0.0 and at_zero["ci95_high"] < 1


def test_all_seeds_equal_gives_a_zero_width_interval_even_at_the_bound():
    for v in (1.0, 0.0, 0.5):
        got = mean_ci([v, v, v], bounds=(0.0, 1.0))
        assert (got["mean"], got["ci95_low"], got["ci95_high"], got["std"]) == (v, v, v, 0.0)


def test_values_outside_the_range_and_bad_ranges_are_errors():
    with pytest.raises(ValueError, match=r"values in \[-0.1, 0.5\] outside the range \(0.0, 1.0\)"):
        mean_ci([-0.1, 0.5], bounds=(0.0, 1.0))
    with pytest.raises(ValueError, match="low < high"):
        mean_ci([0.5], bounds=(1.0, 0.0))


def test_difference_of_accuracies_stays_in_minus_one_one():
    acc = RANGES["accuracy"]
    assert difference_bounds(acc, acc) == (-1.0, 1.0)
    got = diff_ci([1.0, 0.2], [0.0, 0.9], bounds=difference_bounds(acc, acc))
    assert got["ci95_low"] == -1.0 and got["ci95_high"] == 1.0
    wide = diff_ci([1.0, 0.2], [0.0, 0.9])  # unbounded: Welch alone leaves [-1, 1]
    assert wide["ci95_low"] < -1 and wide["ci95_high"] > 1


def test_every_summarised_metric_has_a_range():
    from corruptlab.eval.metrics import METRICS
    from corruptlab.report.tables import OUTCOME_METRICS
    from corruptlab.studies.ood.tables import OOD_METRICS

    for metric in [*METRICS.names(), *OUTCOME_METRICS, *OOD_METRICS, "error", "csr", "spearman"]:
        assert metric in RANGES, metric
    assert bounds_of("no_such_metric") == (-math.inf, math.inf)
    assert np.isinf(bounds_of("nll")[1])


def test_verdict_summary_counts_per_study_and_names_the_table(tmp_path):
    from corruptlab.report.claims import verdict_summary

    path = tmp_path / "claims.parquet"
    pd.DataFrame({"verdict": ["supported", "inconclusive", "inconclusive"]}).to_parquet(path)
    text = verdict_summary({"a": str(path), "missing": str(tmp_path / "none.parquet")})
    lines = text.splitlines()
    assert lines[0].startswith("Claims checked on this run's numbers")
    assert lines[1] == "  a: 1 supported, 0 contradicted, 2 inconclusive"
    assert lines[2].strip() == str(path)
    assert "missing" not in text
    assert verdict_summary({"missing": str(tmp_path / "none.parquet")}) == ""
