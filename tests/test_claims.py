"""The label-noise claims (corruptlab.report.claims) on hand-made runs with hand-chosen
accuracies."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from records import PROVENANCE, make_noise, make_record, output, runs_row, selection_table
from scipy import stats as sps

from corruptlab.report.claims import check_claims
from corruptlab.report.tables import show
from corruptlab.studies import STUDIES

STUDY = "ln_test"
VERDICTS = {"supported", "contradicted", "inconclusive", "not applicable", "reported"}
FALLS, RANKING, ABOVE_90 = "accuracy falls", "conv4 >= MLPs >= perceptron", "above 90%"

# test accuracy per (model, alpha) over three seeds: every model falls with alpha and
# conv4 > mlp1 > perceptron at alpha 5
BASE = {
    ("perceptron", 0): [0.88, 0.90, 0.89],
    ("perceptron", 5): [0.70, 0.74, 0.69],
    ("mlp1", 0): [0.95, 0.96, 0.97],
    ("mlp1", 5): [0.85, 0.88, 0.84],
    ("conv4", 0): [0.99, 0.98, 0.99],
    ("conv4", 5): [0.96, 0.97, 0.95],
}


def build_tables(acc: dict, dataset: str = "mnist5k", commits: dict | None = None) -> dict:
    """runs (clean condition) and selection for ``acc``: {(model, alpha[, delta]): [seeds]}.

    Each setting also has a decoy lr with poor validation accuracy and test accuracy 1 - a, which
    the selection must leave out of every claim."""
    commits = commits or {}
    rows = []
    for key, values in acc.items():
        model, alpha, *delta = key
        noise = make_noise(alpha, *delta)
        for seed, a in enumerate(values):
            for lr, val, test in ((1.0, 0.9, a), (0.1, 0.1, 1.0 - a)):
                rec = make_record(
                    model,
                    noise,
                    lr,
                    seed,
                    best_val=val,
                    study=STUDY,
                    dataset=dataset,
                    commit=commits.get((model, seed), "c0ffee"),
                    best_epoch=4,
                )
                rows.append(runs_row(rec, test, nll=0.3, entropy=0.2, ece=0.05))
    runs = pd.DataFrame(rows)
    return {"runs": runs, "selection": selection_table(runs)}


def study_dict(dataset: str = "mnist5k") -> dict:
    return {
        "kind": "label_noise",
        "dataset": dataset,
        "models": ["perceptron", "mlp1", "conv4"],
        "noise": [{"kind": "none"}, {"kind": "uniform", "alpha": [5]}],
        "optimizers": [{"name": "adadelta", "lr": [0.1, 1.0]}],
        "batch_size": 128,
        "max_epochs": 10,
        "patience": 3,
        "seeds": 3,
    }


def claims_for(acc: dict, dataset: str = "mnist5k", **kw) -> pd.DataFrame:
    return check_claims("label_noise", build_tables(acc, dataset, **kw), study_dict(dataset))


def rows_of(claims: pd.DataFrame, text: str) -> pd.DataFrame:
    return claims[claims["claim"].str.contains(text, regex=False)]


def one(claims: pd.DataFrame, text: str, subject_start: str) -> pd.Series:
    got = rows_of(claims, text)
    got = got[got["subject"].str.startswith(subject_start)]
    assert len(got) == 1, (text, subject_start, list(claims["subject"]))
    return got.iloc[0]


def welch(a, b) -> tuple[float, float, float]:
    ci = sps.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    return float(np.mean(a) - np.mean(b)), float(ci.low), float(ci.high)


# ---------------------------------------------------------------------------------- registry


def test_label_noise_claims_are_registered_and_needed_tables_declared():
    claims = STUDIES.get("label_noise").claims
    assert [c.__name__ for c in claims] == [
        "_learns_without_noise",
        "_accuracy_falls",
        "_ranking",
        "_conv4_above_90",
    ]
    assert STUDIES.get("label_noise").needs("claims") == ("runs", "selection")


# ------------------------------------------------------------- sanity: alpha 0 learns


LEARNS = "every model learns from clean labels"


def test_every_model_learns_at_alpha_0_from_the_selected_lr():
    claims = claims_for(BASE)
    learned = rows_of(claims, LEARNS)
    assert learned["subject"].tolist() == ["conv4", "mlp1", "perceptron"]
    assert set(learned["verdict"]) == {"supported"}
    # the selected lr's accuracies, not the decoy lr's (1 - a)
    assert one(claims, LEARNS, "perceptron")["value"] == pytest.approx(0.89)
    assert (learned["criterion"] == "clean test accuracy > 0.5").all()


def test_a_model_that_does_not_learn_is_contradicted():
    acc = {**BASE, ("mlp1", 0): [0.11, 0.09, 0.10]}  # chance on 10 classes
    got = one(claims_for(acc), LEARNS, "mlp1")
    assert got["verdict"] == "contradicted" and got["ci95_high"] < 0.5


# -------------------------------------------------------------------- (a) accuracy falls: pass


def test_accuracy_falls_passes_for_every_model_with_the_difference_of_means():
    claims = claims_for(BASE)
    falls = rows_of(claims, FALLS)
    assert len(falls) == 3
    for model in ("perceptron", "mlp1", "conv4"):
        got = one(claims, FALLS, f"{model} (uniform)")
        diff, low, high = welch(BASE[(model, 5)], BASE[(model, 0)])
        assert got["verdict"] == "supported"
        assert got["reason"].startswith("the whole 95% CI") and got["ci95_high"] < 0
        assert got["value"] == pytest.approx(diff, abs=1e-12)
        assert got["ci95_low"] == pytest.approx(low, abs=1e-12)
        assert got["ci95_high"] == pytest.approx(high, abs=1e-12)
        assert got["n"] == 3
        assert "alpha=5" in got["detail"] and "alpha=0" in got["detail"]
    # by hand: perceptron 0.71 - 0.89, mlp1 0.8566.. - 0.96, conv4 0.96 - 0.98666..
    assert one(claims, FALLS, "perceptron")["value"] == pytest.approx(-0.18, abs=1e-12)
    assert one(claims, FALLS, "mlp1")["value"] == pytest.approx(2.57 / 3 - 0.96, abs=1e-12)
    assert one(claims, FALLS, "conv4")["value"] == pytest.approx(0.96 - 2.96 / 3, abs=1e-12)


# -------------------------------------------------------------------- (b) accuracy falls: fail


def test_accuracy_rising_with_alpha_fails_that_model_only():
    acc = {**BASE, ("perceptron", 5): [0.92, 0.93, 0.91]}
    claims = claims_for(acc)
    perceptron = one(claims, FALLS, "perceptron")
    # the whole CI is above 0: the data contradict "falls"
    assert perceptron["verdict"] == "contradicted"
    assert perceptron["ci95_low"] > 0
    assert perceptron["value"] == pytest.approx(0.92 - 0.89, abs=1e-12)
    assert one(claims, FALLS, "mlp1")["verdict"] == "supported"
    assert one(claims, FALLS, "conv4")["verdict"] == "supported"


def test_unchanged_accuracy_is_inconclusive():
    # equal means at both ends of the alpha range: the CI straddles 0
    acc = {**BASE, ("mlp1", 5): BASE[("mlp1", 0)]}
    got = one(claims_for(acc), FALLS, "mlp1")
    assert got["value"] == 0.0
    assert got["ci95_low"] < 0 < got["ci95_high"]
    assert got["verdict"] == "inconclusive"
    assert "straddles 0" in got["reason"]


def test_one_seed_is_inconclusive_whatever_its_value():
    acc = {key: values[:1] for key, values in BASE.items()}
    got = one(claims_for(acc), FALLS, "perceptron")
    assert got["value"] == pytest.approx(0.70 - 0.88, abs=1e-12)  # far below 0, but one seed
    assert got["verdict"] == "inconclusive"
    assert "fewer than two seeds" in got["reason"]


def test_model_without_noisy_runs_is_not_applicable():
    acc = {**BASE, ("mlp2", 0): [0.97, 0.96, 0.95]}
    got = one(claims_for(acc), FALLS, "mlp2")
    assert got["verdict"] == "not applicable"
    assert "fewer than two alphas" in got["reason"]
    assert math.isnan(got["value"])


def test_structured_noise_is_its_own_family():
    acc = {
        **BASE,
        ("mlp1", 5, 0.5): [0.60, 0.62, 0.64],
        ("conv4", 5, 0.5): [0.97, 0.99, 0.98],
        ("perceptron", 5, 0.5): [0.50, 0.40, 0.45],
    }
    claims = claims_for(acc)
    assert len(rows_of(claims, FALLS)) == 6
    got = one(claims, FALLS, "mlp1 (structured, delta=0.5)")
    assert got["value"] == pytest.approx(0.62 - 0.96, abs=1e-12)
    assert got["verdict"] == "supported"
    # conv4 under structured noise: 0.98 vs 0.98666.. at alpha 0 still falls (slightly)
    assert one(claims, FALLS, "conv4 (structured")["value"] == pytest.approx(0.98 - 2.96 / 3)
    assert one(claims, FALLS, "conv4 (uniform)")["verdict"] == "supported"
    assert len(rows_of(claims, RANKING)) == 4  # two pairs per family


# -------------------------------------------------------------------------------- (c) ranking


def test_ranking_rows_at_the_largest_alpha():
    claims = claims_for(BASE)
    ranking = rows_of(claims, RANKING)
    assert len(ranking) == 2
    top = one(claims, RANKING, "conv4 - mlp1")
    low = one(claims, RANKING, "mlp1 - perceptron")
    assert "alpha=5" in top["subject"] and "uniform" in top["subject"]
    diff, lo, hi = welch(BASE[("conv4", 5)], BASE[("mlp1", 5)])
    assert top["value"] == pytest.approx(0.96 - 2.57 / 3, abs=1e-12)
    assert top["value"] == pytest.approx(diff, abs=1e-12)
    assert (top["ci95_low"], top["ci95_high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert low["value"] == pytest.approx(2.57 / 3 - 0.71, abs=1e-12)
    assert top["verdict"] == "supported" and low["verdict"] == "supported"


def test_ranking_is_contradicted_when_conv4_is_clearly_below_the_mlp():
    acc = {**BASE, ("conv4", 5): [0.70, 0.72, 0.71]}
    claims = claims_for(acc)
    top = one(claims, RANKING, "conv4 - mlp1")
    assert top["value"] == pytest.approx(0.71 - 2.57 / 3, abs=1e-12)
    assert top["ci95_high"] < 0
    assert top["verdict"] == "contradicted"
    assert one(claims, RANKING, "mlp1 - perceptron")["verdict"] == "supported"


def test_ranking_slightly_below_with_overlapping_seeds_is_inconclusive():
    # conv4 below mlp1 (0.85, 0.88, 0.84) by 0.017 on average, but the seeds overlap
    acc = {**BASE, ("conv4", 5): [0.82, 0.86, 0.84]}
    top = one(claims_for(acc), RANKING, "conv4 - mlp1")
    assert top["value"] < 0 and top["ci95_low"] < 0 < top["ci95_high"]
    assert top["verdict"] == "inconclusive"


def test_ranking_tie_with_spread_is_inconclusive_and_exact_tie_supported():
    same = [0.85, 0.80, 0.90]
    acc = {**BASE, ("conv4", 5): same, ("mlp1", 5): same, ("perceptron", 5): same}
    claims = claims_for(acc)
    for subject in ("conv4 - mlp1", "mlp1 - perceptron"):
        got = one(claims, RANKING, subject)
        assert got["value"] == 0.0
        assert got["verdict"] == "inconclusive"
    flat = [0.85, 0.85, 0.85]  # every seed equal: a zero-width CI at 0, which is >= 0
    acc = {**BASE, ("conv4", 5): flat, ("mlp1", 5): flat, ("perceptron", 5): flat}
    got = one(claims_for(acc), RANKING, "conv4 - mlp1")
    assert (got["value"], got["ci95_low"], got["ci95_high"]) == (0.0, 0.0, 0.0)
    assert got["verdict"] == "supported"


# ---------------------------------------------------------------------- (d) conv4 above 90%


def test_conv4_above_90_not_applicable_off_mnist():
    got = one(claims_for(BASE, "mnist5k"), ABOVE_90, "conv4")
    assert got["verdict"] == "not applicable"
    assert "mnist5k" in got["reason"]
    assert math.isnan(got["value"]) and got["n"] == 0


def test_conv4_above_90_not_applicable_without_alpha_100():
    got = one(claims_for(BASE, "mnist"), ABOVE_90, "conv4")
    assert got["verdict"] == "not applicable"
    assert "alpha = 100" in got["reason"]
    assert got["paper_value"] == 0.90 and "Rolnick" in got["paper_source"]
    assert math.isnan(got["value"])


@pytest.mark.parametrize(
    ("conv4_at_100", "expected"),
    [
        ([0.94, 0.95, 0.96], "supported"),
        ([0.84, 0.85, 0.86], "contradicted"),
        ([0.86, 0.90, 0.94], "inconclusive"),
    ],
)
def test_conv4_above_90_on_mnist_at_alpha_100(conv4_at_100, expected):
    acc = {
        **BASE,
        ("conv4", 100): conv4_at_100,
        ("mlp1", 100): [0.5, 0.6, 0.55],
        ("perceptron", 100): [0.3, 0.2, 0.25],
    }
    claims = claims_for(acc, "mnist")
    got = one(claims, ABOVE_90, "conv4")
    ci = sps.ttest_1samp(conv4_at_100, 0.0).confidence_interval(0.95)
    assert got["verdict"] == expected
    assert got["paper_value"] == 0.90 and "Rolnick" in got["paper_source"]
    assert "conv4" in got["paper_differs"]
    assert got["value"] == pytest.approx(np.mean(conv4_at_100), abs=1e-12)
    assert got["ci95_low"] == pytest.approx(ci.low, abs=1e-12)
    assert got["ci95_high"] == pytest.approx(ci.high, abs=1e-12)
    assert got["n"] == 3
    # the other claims now compare alpha 100 with alpha 0 and rank at alpha 100
    assert one(claims, FALLS, "conv4")["value"] == pytest.approx(
        np.mean(conv4_at_100) - 2.96 / 3, abs=1e-12
    )
    assert "alpha=100" in one(claims, RANKING, "conv4 - mlp1")["subject"]


# ------------------------------------------------------------------ every row, the registry


def test_every_row_has_study_provenance_and_a_valid_result():
    commits = {("mlp1", 2): "aaa111"}  # one run on another commit
    claims = claims_for(BASE, commits=commits)
    assert len(claims) == 3 + 3 + 2 + 1
    assert list(claims.columns[:1]) == ["study"]
    assert (claims["study"] == STUDY).all()
    for col, value in PROVENANCE.items():
        assert (claims[col] == value).all(), col
    assert (claims["git_commit"] == "aaa111;c0ffee").all()
    assert set(claims["verdict"]) <= VERDICTS
    assert set(claims["verdict"]) == {"supported", "not applicable"}
    for col in (
        "claim",
        "subject",
        "value",
        "ci95_low",
        "ci95_high",
        "n",
        "criterion",
        "detail",
        "test",
        "reason",
        "paper_value",
        "paper_setting",
        "paper_source",
    ):
        assert col in claims, col


def test_claims_table_entry_uses_the_study_kind():
    tables = build_tables(BASE)
    via_registry = output("label_noise", "claims")(tables, study_dict())
    direct = check_claims("label_noise", tables, study_dict())
    pd.testing.assert_frame_equal(via_registry, direct)
    with pytest.raises(KeyError, match="unknown study kind .no_such_kind.; accepted: label_noise"):
        check_claims("no_such_kind", tables, study_dict())


def test_show_renders_each_claim():
    claims = claims_for({**BASE, ("perceptron", 5): [0.92, 0.93, 0.91]})
    text = show(claims)
    assert isinstance(text, str)
    for claim in claims["claim"].unique():
        assert claim in text
    for fragment in (
        FALLS,
        RANKING,
        ABOVE_90,
        "supported",
        "contradicted",
        "not applicable",
        "conv4 - mlp1",
    ):
        assert fragment in text
    header = text.splitlines()[0].split()
    assert header[:6] == ["verdict", "claim", "subject", "value", "ci95_low", "ci95_high"]
    # the paper's numbers and their sources, where any row has one
    assert claims["paper_value"].notna().any() and header[6:] == ["paper_value", "paper_source"]
    assert len(text.splitlines()) == len(claims) + 1
