"""Tables, claims and figures of the corruption / test-time-adaptation study on hand-made runs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from records import make_noise, make_record, runs_row  # noqa: E402

from corruptlab.claims import check_claims  # noqa: E402
from corruptlab.figures import FIGURES  # noqa: E402
from corruptlab.studies import STUDIES  # noqa: E402
from corruptlab.tables import TABLES  # noqa: E402

METHODS = {"source": {}, "norm": {"batch_size": 128}, "tent": {"lr": 0.001, "batch_size": 128}}


def method_id(name: str) -> str:
    params = METHODS[name]
    return "-".join([name, *(f"{k}{v:g}" for k, v in params.items())])


def accuracy_of(model: str, condition: str, severity: int, method: str, seed: int) -> float:
    """A known error pattern: grows with severity, lower for tent and norm, mlp_bn worse."""
    if condition == "clean":
        return 0.98 - 0.01 * seed
    error = 0.05 * severity + (0.1 if condition == "fog" else 0.0) + 0.01 * seed
    error *= {"source": 1.0, "norm": 0.8, "tent": 0.7}[method]
    error *= 1.5 if model == "mlp_bn" else 1.0
    return 1.0 - error


def runs_frame() -> pd.DataFrame:
    rows = []
    for model in ("conv4_bn", "mlp_bn"):
        for seed in (0, 1):
            record = make_record(model, make_noise(0), 0.001, seed)
            conditions = [("clean", 0)] + [
                (c, s) for c in ("gaussian_noise", "fog") for s in (1, 5)
            ]
            for condition, severity in conditions:
                for method in METHODS:
                    params = METHODS[method]
                    rows.append({
                        **runs_row(record, accuracy_of(model, condition, severity, method, seed),
                                   condition),
                        "severity": severity, "method": method, "method_id": method_id(method),
                        "tta_lr": params.get("lr"), "tta_batch_size": params.get("batch_size"),
                        "tta_steps": 1 if method == "tent" else None,
                    })  # fmt: skip
    return pd.DataFrame(rows)


def errors_table(baseline: str | None = "mlp_bn") -> pd.DataFrame:
    study = {"kind": "corruption_tta", "baseline_model": baseline}
    return TABLES.get("corruption_errors")({"runs": runs_frame()}, study)


def pick(table: pd.DataFrame, **where) -> pd.DataFrame:
    mask = np.ones(len(table), bool)
    for k, v in where.items():
        mask &= (table[k] == v).to_numpy()
    return table[mask]


def test_corruption_errors_per_condition_and_means():
    e = errors_table()
    row = pick(e, model="conv4_bn", method="source", condition="fog", severity=5, metric="error")
    assert len(row) == 1
    # seeds 0 and 1: errors 0.35 and 0.36
    assert row["mean"].iloc[0] == pytest.approx(0.355) and row["n"].iloc[0] == 2
    sev5 = pick(e, model="conv4_bn", method="tent", condition="mean", severity=5, metric="error")
    # per seed: mean over gaussian (0.25 + 0.01 s) and fog (0.35 + 0.01 s), times 0.7
    assert sev5["mean"].iloc[0] == pytest.approx(0.7 * (0.30 + 0.31) / 2)
    overall = pick(e, model="conv4_bn", method="source", condition="mean", severity=0)
    per_seed = [np.mean([0.05 + 0.01 * s, 0.25 + 0.01 * s, 0.15 + 0.01 * s, 0.35 + 0.01 * s])
                for s in (0, 1)]  # fmt: skip
    assert overall["mean"].iloc[0] == pytest.approx(np.mean(per_seed))
    assert not len(pick(e, condition="clean"))  # clean accuracy is not a corruption error


def test_mce_is_relative_to_the_baseline_model():
    e = errors_table()
    mce = e[e["metric"] == "mCE"]
    # every conv4_bn error is 1/1.5 of mlp_bn's, so each CE_c and the mCE are 2/3
    assert pick(mce, model="conv4_bn", method="source")["mean"].iloc[0] == pytest.approx(2 / 3)
    assert pick(mce, model="mlp_bn", method="tent")["mean"].iloc[0] == pytest.approx(1.0)
    assert set(mce["n"]) == {2}  # two corruptions
    assert errors_table(baseline=None)["metric"].eq("mCE").sum() == 0


def test_tta_claim_passes_when_adaptation_lowers_error():
    runs = runs_frame()
    claims = check_claims("corruption_tta", {"runs": runs, "predictions": predictions()},
                          {"kind": "corruption_tta"})  # fmt: skip
    tta = claims[claims["claim"].str.startswith("tent and norm error below source")]
    assert set(tta["subject"]) == {f"{m} {k} (gaussian_noise)" for m in ("conv4_bn", "mlp_bn")
                                   for k in ("norm", "tent")}  # fmt: skip
    assert set(tta["result"]) == {"pass"}
    tent = tta[tta["subject"] == "conv4_bn tent (gaussian_noise)"].iloc[0]
    assert tent["value"] == pytest.approx(-0.3 * 0.255)  # 0.7x the source error, mean 0.255
    worse = runs.copy()
    is_tent = worse["method"] == "tent"
    worse.loc[is_tent, "accuracy"] = worse.loc[is_tent, "accuracy"] - 0.5
    claims = check_claims("corruption_tta", {"runs": worse, "predictions": predictions()},
                          {"kind": "corruption_tta"})  # fmt: skip
    tent_rows = claims[claims["subject"].str.contains(" tent ")]
    assert set(tent_rows["result"]) == {"fail"}


def predictions(flip: bool = False) -> pd.DataFrame:
    """Per-example rows: wrong predictions have the higher entropy (or the lower, if flip)."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in (0, 1):
        correct = rng.random(400) < 0.7
        entropy = np.where(correct, 0.2, 1.5) + 0.1 * rng.random(400)
        if flip:
            entropy = -entropy
        rows.append(pd.DataFrame({
            "run_id": f"conv4_bn/none/x/seed{seed}", "model": "conv4_bn", "seed": seed,
            "condition": "fog", "severity": 5, "method": "source", "correct": correct,
            "entropy": entropy,
        }))  # fmt: skip
    return pd.concat(rows, ignore_index=True)


def test_entropy_claim_and_deciles():
    claims = check_claims("corruption_tta", {"runs": runs_frame(), "predictions": predictions()},
                          {"kind": "corruption_tta"})  # fmt: skip
    ent = claims[claims["claim"].str.startswith("predictive entropy rank-correlates")]
    assert ent["result"].tolist() == ["pass"] and ent["value"].iloc[0] > 0.5
    flipped = check_claims(
        "corruption_tta",
        {"runs": runs_frame(), "predictions": predictions(flip=True)},
        {"kind": "corruption_tta"},
    )
    assert flipped[flipped["claim"].str.startswith("predictive")]["result"].tolist() == ["fail"]

    deciles = TABLES.get("entropy_deciles")({"predictions": predictions()}, {})
    assert deciles["decile"].tolist() == list(range(1, 11))
    assert (deciles["n_runs"] == 2).all()
    assert deciles["error_mean"].iloc[0] == 0 and deciles["error_mean"].iloc[-1] == 1


@pytest.mark.parametrize(
    "name", [f for f in STUDIES.get("corruption_tta").figures if f != "corruption_gallery"]
)
def test_shift_figures_render(name, tmp_path):
    from corruptlab.figures import save_figure

    runs = runs_frame()
    tables = {"runs": runs, "predictions": predictions()}
    tables["corruption_errors"] = errors_table()
    tables["entropy_deciles"] = TABLES.get("entropy_deciles")(tables, {})
    fig = FIGURES.get(name)(tables)
    assert fig.axes and all(ax.has_data() for ax in fig.axes if ax.get_label() != "<colorbar>")
    save_figure(fig, tmp_path / "f.png", tmp_path / "f.pdf")
    assert (tmp_path / "f.png").stat().st_size > 5000
