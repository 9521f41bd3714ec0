"""Per-example difficulty across seeds: aggregation, the Binomial reference, the GOF test."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from corruptlab.studies.memorization.claims import binomial_gof, binomial_gof_by, chi2_sf
from corruptlab.studies.memorization.figures import (
    binomial_reference,
    hardest_and_easiest,
    sorted_curve,
)
from corruptlab.studies.memorization.tables import binomial_pmf, per_example_p_correct


def long_table() -> pd.DataFrame:
    """real/1 epoch: seeds 0-3, examples 0-2; randX/1 epoch: seeds 5-6, examples 0-1."""
    correct = {
        ("real", 0): [1, 1, 1, 1],  # example 0: always right
        ("real", 1): [0, 1, 0, 0],
        ("real", 2): [0, 0, 0, 0],
        ("randX", 0): [True, False],
        ("randX", 1): [True, True],
    }
    seeds = {"real": [0, 1, 2, 3], "randX": [5, 6]}
    rows = [
        {"variant": v, "epochs": 1, "seed": s, "example": e, "correct": c}
        for (v, e), values in correct.items()
        for s, c in zip(seeds[v], values, strict=True)
    ]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # order must not matter


def test_per_example_p_correct_hand_built():
    out = per_example_p_correct(long_table())
    assert list(out.columns) == [
        "variant",
        "epochs",
        "example",
        "n_seeds",
        "n_correct",
        "p_correct",
    ]
    assert out[["variant", "example", "n_seeds", "n_correct"]].values.tolist() == [
        ["randX", 0, 2, 1],
        ["randX", 1, 2, 2],
        ["real", 0, 4, 4],
        ["real", 1, 4, 1],
        ["real", 2, 4, 0],
    ]
    assert out["p_correct"].tolist() == [0.5, 1.0, 1.0, 0.25, 0.0]
    assert out["n_seeds"].dtype == np.int64 and out["n_correct"].dtype == np.int64


def test_per_example_p_correct_other_groupings():
    df = long_table()
    out = per_example_p_correct(df[df.variant == "real"], by="variant")
    assert out["p_correct"].tolist() == [1.0, 0.25, 0.0]
    out = per_example_p_correct(df[df.variant == "real"].drop(columns=["variant", "epochs"]), by=())
    assert list(out.columns) == ["example", "n_seeds", "n_correct", "p_correct"]
    assert out["n_correct"].tolist() == [4, 1, 0]


def test_per_example_p_correct_missing_seed():
    df = long_table()
    drop = (df.variant == "real") & (df.seed == 2) & (df.example == 1)
    with pytest.raises(ValueError, match=r"example 1: missing seed\(s\) \[2\]"):
        per_example_p_correct(df[~drop])


def test_per_example_p_correct_duplicates_and_bad_values():
    df = long_table()
    with pytest.raises(ValueError, match="duplicate"):
        per_example_p_correct(pd.concat([df, df.head(1)]))
    bad = df.copy()
    bad["correct"] = bad["correct"].astype(int)
    bad.iloc[0, bad.columns.get_loc("correct")] = 2
    with pytest.raises(ValueError, match="0/1 or bool"):
        per_example_p_correct(bad)
    with pytest.raises(ValueError, match="missing column"):
        per_example_p_correct(df.drop(columns="seed"))


def test_sorted_curve():
    x, y = sorted_curve([0.2, 1.0, 0.5])
    assert y.tolist() == [1.0, 0.5, 0.2]
    assert x.tolist() == [0.0, 0.5, 1.0]
    x, y = sorted_curve(np.array([0.3]))
    assert x.tolist() == [0.0] and y.tolist() == [0.3]


def test_binomial_pmf_matches_the_formula():
    n, p = 7, 0.3
    exact = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    np.testing.assert_allclose(binomial_pmf(n, p), exact, rtol=1e-12)
    assert binomial_pmf(100, 0.37).sum() == pytest.approx(1.0, abs=1e-12)
    assert binomial_pmf(3, 0.0).tolist() == [1, 0, 0, 0]
    assert binomial_pmf(3, 1.0).tolist() == [0, 0, 0, 1]


def test_binomial_reference():
    assert binomial_reference(100, 0.0, 50).tolist() == [0.0] * 50
    assert binomial_reference(100, 1.0, 50).tolist() == [1.0] * 50
    # Bernoulli(0.3) at positions 0.05, ..., 0.95: cdf(0) = 0.7 covers the first seven
    assert binomial_reference(1, 0.3, 10).tolist() == [1.0] * 3 + [0.0] * 7
    ref = binomial_reference(100, 0.3, 10_000)
    assert len(ref) == 10_000 and np.all(np.diff(ref) <= 0)
    assert ref.mean() == pytest.approx(0.3, abs=2e-3)
    assert ref.std() == pytest.approx(math.sqrt(0.3 * 0.7 / 100), rel=0.05)
    with pytest.raises(ValueError):
        binomial_reference(10, 1.5, 5)


@pytest.mark.parametrize(
    ("statistic", "dof", "expected"),
    [
        (3.841, 1, 0.05),
        (6.635, 1, 0.01),
        (18.307, 10, 0.05),
        (5.991, 2, 0.05),
        (124.342, 100, 0.05),
    ],
)
def test_chi2_sf_table_values(statistic, dof, expected):
    assert chi2_sf(statistic, dof) == pytest.approx(expected, abs=2e-5)


def test_chi2_sf_edges_and_scipy():
    for k in (1, 2, 7, 50):
        assert chi2_sf(0.0, k) == 1.0
    assert chi2_sf(2.0, 2) == pytest.approx(math.exp(-1.0), rel=1e-13)  # dof 2: exp(-x / 2)
    assert chi2_sf(1e6, 3) == 0.0
    stats = pytest.importorskip("scipy.stats")
    for dof in (1, 2, 3, 5, 10, 37, 98):
        for x in (1e-3, 0.5, 1.0, 3.0, dof - 1.0, dof + 0.5, 2.0 * dof, 5.0 * dof + 40):
            if x > 0:
                assert chi2_sf(x, dof) == pytest.approx(stats.chi2.sf(x, dof), rel=1e-9, abs=1e-300)


def test_gof_exact_statistic_without_pooling():
    n_correct = [1] * 60 + [0] * 40  # Bernoulli: bins 0 and 1 expect 50 each under p = 0.5
    res = binomial_gof(n_correct, 1, p=0.5)
    assert res["statistic"] == pytest.approx(4.0)
    assert res["dof"] == 1 and res["n_bins"] == 2 and res["n_examples"] == 100
    assert res["p_value"] == pytest.approx(0.0455003, abs=1e-6)
    estimated = binomial_gof(n_correct, 1)  # p = 0.6 fits exactly, no degree of freedom left
    assert estimated["p"] == pytest.approx(0.6) and estimated["statistic"] == pytest.approx(0.0)
    assert estimated["dof"] == 0 and math.isnan(estimated["p_value"])


def test_gof_accepts_binomial_data():
    rng = np.random.default_rng(0)
    n_correct = rng.binomial(20, 0.4, size=2000)
    res = binomial_gof(n_correct, 20)
    assert res["p"] == pytest.approx(0.4, abs=0.01)
    assert res["dof"] == res["n_bins"] - 2
    assert 5 < res["n_bins"] < 21  # the tails were pooled
    assert res["p_value"] > 0.01
    given = binomial_gof(n_correct, 20, p=0.4)
    assert given["dof"] == given["n_bins"] - 1 and given["p_value"] > 0.01


def test_gof_rejects_easy_and_hard_examples():
    n_correct = np.array([20] * 500 + [0] * 500)  # all-correct and all-wrong examples
    res = binomial_gof(n_correct, 20)
    assert res["p"] == pytest.approx(0.5)
    assert res["p_value"] < 1e-6
    # a milder mixture of two difficulties, same mean 0.5
    rng = np.random.default_rng(1)
    mixed = np.concatenate([rng.binomial(20, 0.2, 500), rng.binomial(20, 0.8, 500)])
    assert binomial_gof(mixed, 20)["p_value"] < 1e-6


def test_gof_bad_counts():
    with pytest.raises(ValueError, match=r"0\.\.5"):
        binomial_gof([0, 6], 5)
    with pytest.raises(ValueError, match="integers"):
        binomial_gof([0.5, 1], 5)


def test_gof_by_group():
    rng = np.random.default_rng(2)
    table = pd.DataFrame(
        {
            "variant": ["randX"] * 300 + ["real"] * 300,
            "epochs": 1,
            "example": list(range(300)) * 2,
            "n_seeds": 10,
            "n_correct": np.concatenate([rng.binomial(10, 0.3, 300), [10] * 150 + [0] * 150]),
        }
    )
    out = binomial_gof_by(table)
    assert out["variant"].tolist() == ["randX", "real"]
    assert out.loc[0, "p_value"] > 0.01 and out.loc[1, "p_value"] < 1e-6
    assert (out["n_seeds"] == 10).all() and (out["n_examples"] == 300).all()


def test_hardest_and_easiest():
    table = pd.DataFrame(
        {
            "variant": ["real"] * 6 + ["randY"] * 2,
            "epochs": 1,
            "example": [5, 3, 4, 0, 1, 2, 7, 8],
            "p_correct": [0.5, 0.0, 1.0, 0.0, 1.0, 0.3, 0.4, 0.6],
        }
    )
    out = hardest_and_easiest(table, 2)
    real = out[out.variant == "real"]
    assert real[real.end == "hardest"]["example"].tolist() == [0, 3]  # tie at 0.0: index order
    assert real[real.end == "easiest"]["example"].tolist() == [1, 4]  # tie at 1.0: index order
    assert real["rank"].tolist() == [0, 1, 0, 1]
    randy = out[out.variant == "randY"]
    assert randy[randy.end == "hardest"]["example"].tolist() == [7, 8]
    assert randy[randy.end == "easiest"]["example"].tolist() == [8, 7]
    assert out["variant"].tolist() == ["randY"] * 4 + ["real"] * 4
    with pytest.raises(ValueError):
        hardest_and_easiest(table, 0)


def test_ties_are_broken_in_a_seeded_random_order_not_by_position():
    """20 examples all at P(correct) 1 (class-sorted: 0-9 are 'zeros', 10-19 'ones'): by index
    the easiest 5 would all be zeros; a tie seed mixes them, the same way every time."""
    table = pd.DataFrame(
        {
            "variant": "real",
            "epochs": 1,
            "example": np.arange(20),
            "n_seeds": 3,
            "n_correct": 3,
            "p_correct": 1.0,
        }
    )
    by_index = hardest_and_easiest(table, 5)
    assert by_index[by_index["end"] == "easiest"]["example"].tolist() == [0, 1, 2, 3, 4]
    a = hardest_and_easiest(table, 5, tie_seed=0)
    b = hardest_and_easiest(table, 5, tie_seed=0)
    picked = a[a["end"] == "easiest"]["example"].tolist()
    assert picked == b[b["end"] == "easiest"]["example"].tolist()
    assert picked != [0, 1, 2, 3, 4] and len(set(picked)) == 5
    assert "_tie" not in a.columns
