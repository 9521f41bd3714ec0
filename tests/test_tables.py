"""Tidy tables (corruptlab.report.tables) on small hand-made runs tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from records import eval_row, make_record, output, runs_row, selection_table
from scipy import stats as sps

from corruptlab.core import io
from corruptlab.report.tables import flatten_run, runs_table
from corruptlab.studies import STUDIES
from corruptlab.studies.label_noise.tables import alpha_axis

RUNS_COLUMNS = [
    "study",
    "kind",
    "dataset",
    "split_seed",
    "model",
    "noise_kind",
    "alpha",
    "delta",
    "p",
    "optimizer",
    "lr",
    "weight_decay",
    "momentum",
    "batch_size",
    "max_epochs",
    "patience",
    "seed",
    "run_id",
    "in_classes",
    "status",
    "stopped_by",
    "best_epoch",
    "best_val_accuracy",
    "epochs_trained",
    "n_train_examples",
    "train_seconds",
    "job_seconds",
    "resumed_from_epoch",
    "dataset_hash",
    "packing",
    "corruptlab_version",
    "git_commit",
    "torch_version",
    "python_version",
    "hostname",
    "device",
    "condition",
    "n",
    "accuracy",
    "nll",
    "entropy",
    "ece",
]
METRIC_NAMES = [
    "accuracy",
    "nll",
    "entropy",
    "ece",
    "best_val_accuracy",
    "best_epoch",
    "epochs_trained",
    "train_seconds",
]


NONE = {"kind": "none"}
UNIFORM5 = {"kind": "uniform", "alpha": 5}


# --------------------------------------------------------------------------------- flatten_run


def test_flatten_run_columns_and_values():
    row = flatten_run(make_record("mlp1", UNIFORM5, 0.1, 2, best_val=0.7))
    assert list(row) == RUNS_COLUMNS[: RUNS_COLUMNS.index("condition")]
    assert row["noise_kind"] == "uniform" and row["alpha"] == 5
    assert math.isnan(row["delta"]) and math.isnan(row["p"]) and math.isnan(row["momentum"])
    assert row["optimizer"] == "adadelta" and row["lr"] == 0.1 and row["weight_decay"] == 0.0
    assert row["run_id"] == "mlp1/uniform-a5/adadelta-lr0.1-wd0-bs128/seed2"
    assert row["device"] == "cpu"  # the device that ran it, not the configured "auto"
    clean = flatten_run(make_record("mlp1", NONE, 0.1, 0))
    assert clean["noise_kind"] == "none" and math.isnan(clean["alpha"])
    # how the run was trained: alone, or in a pack (run.json files written before the packing
    # key existed came from vmap packs)
    assert row["packing"] == "none"
    for extra, packing in [
        ({"packed_with": [0, 1], "packing": "sequential"}, "sequential"),
        ({"packed_with": [0, 1]}, "vmap"),
    ]:
        record = {**make_record("mlp1", NONE, 0.1, 0), **extra}
        assert flatten_run(record)["packing"] == packing


def test_a_schedule_and_an_objective_are_columns_only_where_runs_have_them():
    """A run with a non-constant lr schedule or a non-default objective gets their slugs as
    columns, which keep runs that differ only in them apart in the summary; the selection
    picks the best optimizer setting (lr and schedule) per setting of the rest, objective
    included. Other runs' rows (and so their tables) have neither column."""
    plain = make_record("mlp1", NONE, 0.1, 0)
    assert "lr_schedule" not in flatten_run(plain) and "objective" not in flatten_run(plain)
    step = {"name": "step", "gamma": 0.5}
    kd = {"name": "distillation", "temperature": 4.0, "alpha": 0.5}
    rows = []
    for schedule, objective, val, acc in [
        (None, None, 0.6, 0.9),
        (step, None, 0.7, 0.8),
        (step, kd, 0.5, 0.7),
    ]:
        for seed in range(3):
            record = make_record("mlp1", NONE, 0.1, seed, best_val=val)
            if schedule:
                record["run"]["optimizer"]["schedule"] = schedule
            if objective:
                record["run"]["objective"] = objective
            rows.append(runs_row(record, acc + seed / 100, "clean"))
    runs = pd.DataFrame(rows)
    assert list(runs["lr_schedule"].fillna("-")) == ["-"] * 3 + ["step-g0.5"] * 6
    assert list(runs["objective"].fillna("-")) == ["-"] * 6 + ["kd-t4-a0.5"] * 3
    summary = output("label_noise", "summary")({"runs": runs}, {})
    accuracy = summary[summary["metric"] == "accuracy"]
    assert len(accuracy) == 3 and list(accuracy["n"]) == [3, 3, 3]
    sel = selection_table(runs)
    assert len(sel) == 2
    # cross-entropy: the step schedule has the better validation accuracy
    ce = sel[sel["objective"].isna()].iloc[0]
    assert ce["lr_schedule"] == "step-g0.5" and ce["test_accuracy"] == pytest.approx(0.81)
    distilled = sel[sel["objective"] == "kd-t4-a0.5"].iloc[0]
    assert distilled["test_accuracy"] == pytest.approx(0.71)


# ---------------------------------------------------------------------------------- runs_table


def test_runs_table_joins_runs_and_evaluations(tmp_path):
    a = make_record("mlp1", UNIFORM5, 1.0, 0, best_val=0.61)
    b = make_record("conv4", NONE, 0.1, 1, best_val=0.93)
    paths = []
    for i, rec in enumerate([a, b]):
        paths.append(str(tmp_path / f"run{i}" / "run.json"))
        io.write_json(rec, paths[-1])
    a_id, b_id = a["run"]["run_id"], b["run"]["run_id"]
    io.write_parquet(
        [eval_row(a_id, 0.60, "clean"), eval_row(a_id, 0.40, "blur")],
        tmp_path / "run0" / "eval.parquet",
    )
    io.write_parquet([eval_row(b_id, 0.95)], tmp_path / "run1" / "eval.parquet")
    evals = [str(tmp_path / "run1" / "eval.parquet"), str(tmp_path / "run0" / "eval.parquet")]

    table = runs_table(paths[::-1], evals)
    assert list(table.columns) == RUNS_COLUMNS
    # conv4/... sorts before mlp1/...; within a run conditions are sorted (blur < clean)
    assert list(zip(table["run_id"], table["condition"], strict=True)) == [
        (b_id, "clean"),
        (a_id, "blur"),
        (a_id, "clean"),
    ]
    assert list(table["accuracy"]) == [0.95, 0.40, 0.60]
    assert list(table["model"]) == ["conv4", "mlp1", "mlp1"]
    assert list(table["best_val_accuracy"]) == [0.93, 0.61, 0.61]
    assert table.loc[0, "noise_kind"] == "none" and math.isnan(table.loc[0, "alpha"])
    assert list(table["alpha"].iloc[1:]) == [5, 5]
    assert list(table["lr"]) == [0.1, 1.0, 1.0]
    assert set(table["git_commit"]) == {"c0ffee"}


def test_runs_table_run_without_evaluation_raises(tmp_path):
    recs = [make_record("mlp1", NONE, 1.0, s) for s in range(2)]
    paths = [str(tmp_path / f"run{s}.json") for s in range(2)]
    for rec, path in zip(recs, paths, strict=True):
        io.write_json(rec, path)
    io.write_parquet([eval_row(recs[0]["run"]["run_id"], 0.9)], tmp_path / "eval0.parquet")
    with pytest.raises(ValueError, match="without evaluation") as err:
        runs_table(paths, [str(tmp_path / "eval0.parquet")])
    assert recs[1]["run"]["run_id"] in str(err.value)
    assert recs[0]["run"]["run_id"] not in str(err.value)


# ------------------------------------------------------------------------------------- summary

# two configurations (lr 0.1 and 1.0 of mlp1 at alpha 5) x three seeds, two conditions
ACC = {0.1: [0.70, 0.74, 0.75], 1.0: [0.80, 0.86, 0.83]}
VAL = {0.1: [0.71, 0.73, 0.78], 1.0: [0.82, 0.84, 0.89]}
BLUR = {0.1: [0.50, 0.52, 0.57], 1.0: [0.60, 0.61, 0.65]}


def summary_runs() -> pd.DataFrame:
    rows = []
    for lr in (0.1, 1.0):
        for seed in range(3):
            rec = make_record(
                "mlp1",
                UNIFORM5,
                lr,
                seed,
                best_val=VAL[lr][seed],
                best_epoch=seed + 2,
                status="diverged" if (lr == 1.0 and seed == 1) else "ok",
                commit="aaa111" if (lr == 0.1 and seed == 2) else "bbb222",
            )
            rows.append(runs_row(rec, ACC[lr][seed], "clean"))
            rows.append(runs_row(rec, BLUR[lr][seed], "blur"))
    return pd.DataFrame(rows)


def expected_ci(values) -> tuple[float, float, float, float]:
    x = np.asarray(values, dtype=float)
    ci = sps.ttest_1samp(x, 0.0).confidence_interval(0.95)
    return float(np.mean(x)), float(np.std(x, ddof=1)), float(ci.low), float(ci.high)


def test_summary_one_row_per_config_condition_metric():
    s = output("label_noise", "summary")({"runs": summary_runs()}, {})
    assert len(s) == 2 * 2 * len(METRIC_NAMES)
    assert not s.duplicated(["lr", "condition", "metric"]).any()
    assert set(s["metric"]) == set(METRIC_NAMES)
    assert set(s["condition"]) == {"clean", "blur"}
    assert set(s["lr"]) == {0.1, 1.0}
    assert (s["n"] == 3).all()
    assert "seed" not in s and "run_id" not in s


@pytest.mark.parametrize("lr", [0.1, 1.0])
@pytest.mark.parametrize(
    ("condition", "metric", "values"),
    [
        ("clean", "accuracy", ACC),
        ("blur", "accuracy", BLUR),
        ("clean", "best_val_accuracy", VAL),
        ("blur", "best_val_accuracy", VAL),
        ("clean", "nll", {k: [1 - a for a in v] for k, v in ACC.items()}),
        ("clean", "best_epoch", {0.1: [2, 3, 4], 1.0: [2, 3, 4]}),
    ],
)
def test_summary_statistics_match_numpy(lr, condition, metric, values):
    s = output("label_noise", "summary")({"runs": summary_runs()}, {})
    got = s[(s["lr"] == lr) & (s["condition"] == condition) & (s["metric"] == metric)]
    assert len(got) == 1
    got = got.iloc[0]
    mean, std, low, high = expected_ci(values[lr])
    assert got["n"] == 3
    assert got["mean"] == pytest.approx(mean, abs=1e-12)
    assert got["std"] == pytest.approx(std, abs=1e-12)
    assert got["ci95_low"] == pytest.approx(low, abs=1e-12)
    assert got["ci95_high"] == pytest.approx(high, abs=1e-12)


def test_summary_carries_config_divergence_and_provenance():
    s = output("label_noise", "summary")({"runs": summary_runs()}, {})
    for col, value in [
        ("study", "ln_test"),
        ("dataset", "mnist5k"),
        ("model", "mlp1"),
        ("noise_kind", "uniform"),
        ("alpha", 5),
        ("optimizer", "adadelta"),
        ("batch_size", 128),
        ("corruptlab_version", "0.1.0"),
        ("torch_version", "2.9.0"),
        ("device", "cpu"),
    ]:
        assert (s[col] == value).all(), col
    assert s["delta"].isna().all() and s["momentum"].isna().all()
    by_lr = s.groupby("lr")
    # one seed of lr 1.0 diverged, none of lr 0.1
    assert set(by_lr["n_diverged"].unique().loc[1.0]) == {1}
    assert set(by_lr["n_diverged"].unique().loc[0.1]) == {0}
    # lr 0.1 ran on two commits: both, sorted and joined with ';'
    assert set(by_lr["git_commit"].unique().loc[0.1]) == {"aaa111;bbb222"}
    assert set(by_lr["git_commit"].unique().loc[1.0]) == {"bbb222"}


def test_summary_ignores_nan_metric_values():
    runs = summary_runs()
    runs.loc[
        (runs["lr"] == 0.1) & (runs["seed"] == 0) & (runs["condition"] == "clean"), "accuracy"
    ] = np.nan
    s = output("label_noise", "summary")({"runs": runs}, {})
    got = s[(s["lr"] == 0.1) & (s["condition"] == "clean") & (s["metric"] == "accuracy")].iloc[0]
    mean, std, low, high = expected_ci(ACC[0.1][1:])
    assert got["n"] == 2
    assert got["mean"] == pytest.approx(mean, abs=1e-12)
    assert got["ci95_high"] == pytest.approx(high, abs=1e-12)


# ----------------------------------------------------------------------------------- selection

SEL_MODELS = ("mlp1", "conv4")
SEL_NOISES = {0: NONE, 5: UNIFORM5}
# validation accuracy per (model, alpha, lr) over three seeds: lr 0.1 wins for mlp1, lr 1.0 for
# conv4; test accuracy is deliberately higher for the lr that loses on validation
SEL_VAL = {
    ("mlp1", 0, 0.1): [0.90, 0.92, 0.91],
    ("mlp1", 0, 1.0): [0.85, 0.86, 0.87],
    ("mlp1", 5, 0.1): [0.80, 0.81, 0.85],
    ("mlp1", 5, 1.0): [0.70, 0.72, 0.74],
    ("conv4", 0, 0.1): [0.94, 0.95, 0.93],
    ("conv4", 0, 1.0): [0.97, 0.98, 0.99],
    ("conv4", 5, 0.1): [0.88, 0.86, 0.87],
    ("conv4", 5, 1.0): [0.91, 0.92, 0.96],
}
SEL_TEST = {
    ("mlp1", 0, 0.1): [0.89, 0.90, 0.94],
    ("mlp1", 0, 1.0): [0.99, 0.99, 0.99],
    ("mlp1", 5, 0.1): [0.78, 0.83, 0.80],
    ("mlp1", 5, 1.0): [0.95, 0.96, 0.97],
    ("conv4", 0, 0.1): [0.99, 0.99, 0.98],
    ("conv4", 0, 1.0): [0.96, 0.97, 0.95],
    ("conv4", 5, 0.1): [0.99, 0.98, 0.97],
    ("conv4", 5, 1.0): [0.90, 0.93, 0.91],
}
SEL_WINNER = {"mlp1": 0.1, "conv4": 1.0}


def selection_runs() -> pd.DataFrame:
    rows = []
    for (model, alpha, lr), vals in SEL_VAL.items():
        for seed in range(3):
            rec = make_record(model, SEL_NOISES[alpha], lr, seed, best_val=vals[seed])
            rows.append(runs_row(rec, SEL_TEST[(model, alpha, lr)][seed], "clean"))
            # another condition with the best accuracy everywhere: never used for selection
            rows.append(runs_row(rec, 1.0, "blur"))
    return pd.DataFrame(rows)


def test_selection_picks_lr_by_validation_and_reports_its_test_accuracy():
    sel = selection_table(selection_runs())
    assert len(sel) == len(SEL_MODELS) * len(SEL_NOISES)
    assert not sel.duplicated(["model", "alpha_axis"]).any()
    for model in SEL_MODELS:
        for alpha in SEL_NOISES:
            got = sel[(sel["model"] == model) & (sel["alpha_axis"] == alpha)]
            assert len(got) == 1
            got = got.iloc[0]
            lr = SEL_WINNER[model]
            assert got["lr"] == lr, (model, alpha)
            assert got["val_accuracy"] == pytest.approx(np.mean(SEL_VAL[(model, alpha, lr)]))
            mean, std, low, high = expected_ci(SEL_TEST[(model, alpha, lr)])
            assert got["test_accuracy"] == pytest.approx(mean, abs=1e-12)
            assert got["test_accuracy_std"] == pytest.approx(std, abs=1e-12)
            assert got["test_accuracy_ci95_low"] == pytest.approx(low, abs=1e-12)
            assert got["test_accuracy_ci95_high"] == pytest.approx(high, abs=1e-12)
            assert got["n"] == 3 and got["n_diverged"] == 0
            assert got["git_commit"] == "c0ffee" and got["device"] == "cpu"


def test_selection_alpha_axis_and_columns():
    sel = selection_table(selection_runs())
    none = sel[sel["noise_kind"] == "none"]
    uni = sel[sel["noise_kind"] == "uniform"]
    assert len(none) == 2 and len(uni) == 2
    assert (none["alpha_axis"] == 0.0).all() and none["alpha"].isna().all()
    assert (uni["alpha_axis"] == 5.0).all() and (uni["alpha"] == 5).all()
    cols = list(sel.columns)
    assert cols.index("alpha_axis") == cols.index("noise_kind") + 1
    for c in [
        "val_accuracy",
        "test_accuracy",
        "test_accuracy_ci95_low",
        "test_accuracy_ci95_high",
        "n",
        "n_diverged",
        "corruptlab_version",
        "git_commit",
        "torch_version",
        "device",
    ]:
        assert c in cols, c
    assert "metric" not in cols and "condition" not in cols


def test_selection_survives_a_parquet_round_trip(tmp_path):
    # the workflow writes each table and reads it back before computing the next
    runs = selection_runs()
    io.write_parquet(runs, tmp_path / "runs.parquet")
    tables = {"runs": pd.read_parquet(tmp_path / "runs.parquet")}
    io.write_parquet(output("label_noise", "summary")(tables, {}), tmp_path / "summary.parquet")
    tables["summary"] = pd.read_parquet(tmp_path / "summary.parquet")
    sel = output("label_noise", "selection")(tables, {})
    assert len(sel) == 4
    for model in SEL_MODELS:
        assert set(sel.loc[sel["model"] == model, "lr"]) == {SEL_WINNER[model]}


def test_alpha_axis_is_zero_for_clean_labels_and_alpha_otherwise():
    frame = pd.DataFrame(
        {
            "noise_kind": ["none", "uniform", "structured", "flip"],
            "alpha": [np.nan, 5.0, 20.0, np.nan],
        }
    )
    axis = alpha_axis(frame)
    assert list(axis.iloc[:3]) == [0.0, 5.0, 20.0]
    assert math.isnan(axis.iloc[3])  # a noise kind without alpha is not on the alpha axis


# -------------------------------------------------------------------------------------- studies


def test_study_kind_declares_registered_tables():
    kind = STUDIES.get("label_noise")
    assert kind.table_names == ("runs", "summary", "selection", "claims")
    for name in kind.table_names[1:]:
        assert callable(kind.output(name).fn)
    assert kind.needs("summary") == ("runs",)
    assert kind.needs("selection") == ("summary",)
    assert kind.needs("claims") == ("runs", "selection")
