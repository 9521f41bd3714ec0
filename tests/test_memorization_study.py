"""The memorization study kind (Arpit et al. 2017): config expansion, the trainer's per-epoch
measurements and last-weights mode, the p_correct / csr tables, the claims, the figures, and
one tiny study end to end through the snakemake CLI."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from conftest import copy_workflow, planned_jobs, snakemake  # noqa: E402
from records import output  # noqa: E402
from test_training import cfg, tiny_model, toy_data  # noqa: E402

from corruptlab.core.config import ConfigError, expand_runs, validate_config  # noqa: E402
from corruptlab.data.noise import variant_of  # noqa: E402
from corruptlab.report.claims import VERDICTS, check_claims  # noqa: E402
from corruptlab.studies.memorization.figures import examples_grid  # noqa: E402
from corruptlab.train.packing import train_packed  # noqa: E402
from corruptlab.train.training import train  # noqa: E402

VARIANTS = [{"kind": "none"}, {"kind": "randx", "p": [1.0]}, {"kind": "flip", "p": [1.0]}]
STUDY = {
    "kind": "memorization",
    "dataset": "mnist5k",
    "models": ["mlp1"],
    "noise": VARIANTS,
    "optimizers": [{"name": "sgd", "lr": [0.01], "momentum": [0.9]}],
    "max_epochs": [1, 2],
    "seeds": 3,
    "train": {"seeds_per_job": 3},
    "memorization": {"n_examples": 100, "csr_epochs": [0, 2], "csr_examples": 50},
}


def validated(**changes) -> dict:
    config = {"studies": {"memo": {**STUDY, **changes}}}
    validate_config(config)
    return config


def test_runs_name_their_epochs_train_every_epoch_and_share_the_data_seed():
    config = validated()
    runs = expand_runs("memo", config["studies"]["memo"], config)
    assert len(runs) == 3 * 2 * 3
    one = runs[0]
    assert one["run_id"] == "mlp1/none/sgd-lr0.01-m0.9-wd0-bs128-e1/seed0"
    assert {r["patience"] for r in runs if r["max_epochs"] == 2} == {2}
    assert {r["data_seed"] for r in runs} == {0} and not any(r["restore_best"] for r in runs)
    # CSR only at the epochs a run reaches
    assert one["csr"]["epochs"] == [0]
    assert next(r for r in runs if r["max_epochs"] == 2)["csr"]["epochs"] == [0, 2]
    assert one["csr"]["radius"] == 0.3 and one["csr"]["steps"] == 20


def test_csr_epochs_beyond_training_are_refused():
    with pytest.raises(ConfigError, match=r"memorization.csr_epochs: \[5\] beyond max_epochs 2"):
        validated(memorization={"csr_epochs": [0, 5]})


def test_variant_names():
    assert variant_of({"kind": "none"}) == "real"
    assert variant_of({"kind": "randx", "p": 1.0}) == "randX"
    assert variant_of({"kind": "flip", "p": 1.0}) == "randY"
    assert variant_of({"kind": "flip", "p": 0.5}) == "flip-p0.5"


def test_on_epoch_measures_into_the_history_and_last_weights_are_kept():
    data = toy_data(n=128)
    seen = []

    def measure(epoch, model):
        seen.append(epoch)
        return {"w_norm": float(model[1].weight.detach().norm())} if epoch % 2 == 0 else {}

    model = tiny_model(3)
    result = train(model, data, cfg(max_epochs=4, restore_best=False), on_epoch=measure)
    assert seen == [0, 1, 2, 3, 4]
    assert [("w_norm" in r) for r in result.history] == [True, False, True, False, True]
    assert result.best_epoch == 4  # the last epoch, whatever its validation accuracy
    assert torch.equal(result.best_state["1.weight"], model[1].weight)
    assert result.history[-1]["w_norm"] == pytest.approx(float(model[1].weight.detach().norm()))


def test_packed_members_measure_like_their_twins():
    data = toy_data(n=128)
    seeds = [1, 2]
    cfgs = [cfg(seed=s, max_epochs=3, restore_best=False) for s in seeds]

    def measure(epoch, model, member=None):
        return {"w_sum": float(model[1].weight.detach().sum())}

    packed = train_packed([tiny_model(s) for s in seeds], [data, data], cfgs, on_epoch=measure)
    for s, c, p in zip(seeds, cfgs, packed, strict=True):
        alone = train(tiny_model(s), data, c, on_epoch=measure)
        assert p.best_epoch == alone.best_epoch == 3
        got = [r["w_sum"] for r in p.history]
        assert got == pytest.approx([r["w_sum"] for r in alone.history], rel=1e-4, abs=1e-5)


def predictions(n_seeds: int = 20, n_examples: int = 200, seed: int = 0) -> pd.DataFrame:
    """Per-example correctness: real and randY with easy and hard examples (p 0.95 or 0.05),
    randX with every example alike (p 0.3)."""
    rng = np.random.default_rng(seed)
    rows = []
    p_of = {
        "real": np.where(np.arange(n_examples) % 4 == 0, 0.05, 0.95),
        "randY": np.where(np.arange(n_examples) % 2 == 0, 0.05, 0.95),
        "randX": np.full(n_examples, 0.3),
    }
    for variant, p in p_of.items():
        for s in range(n_seeds):
            correct = rng.random(n_examples) < p
            for i in range(n_examples):
                rows.append(
                    {
                        "model": "mlp1",
                        "variant": variant,
                        "max_epochs": 1,
                        "seed": s,
                        "condition": "train",
                        "method": "source",
                        "index": 10 * i,  # positions in the training set
                        "label": i % 10,
                        "correct": bool(correct[i]),
                    }
                )
    return pd.DataFrame(rows)


def histories() -> pd.DataFrame:
    rows = []
    growth = {"real": -0.05, "randY": 0.10, "randX": 0.02}
    for variant, g in growth.items():
        for s in range(4):
            for epoch in (0, 1, 2):
                rows.append(
                    {
                        "model": "mlp1",
                        "variant": variant,
                        "max_epochs": 2,
                        "seed": s,
                        "epoch": epoch,
                        "csr": 0.2 + g * epoch / 2 + 0.01 * s,
                    }
                )
            rows.append({**rows[-1], "epoch": 3, "csr": np.nan})  # not measured
    return pd.DataFrame(rows)


def test_p_correct_csr_and_claims_tables():
    study = validated()["studies"]["memo"]
    p = output("memorization", "p_correct")({"predictions": predictions()}, study)
    assert len(p) == 3 * 200 and set(p["n_seeds"]) == {20}
    assert {"model", "variant", "max_epochs", "example", "p_correct", "label"} <= set(p)
    assert sorted(p["example"].unique())[:3] == [0, 10, 20]

    csr = output("memorization", "csr")({"histories": histories()}, study)
    assert len(csr) == 3 * 3 and set(csr["n"]) == {4}
    real0 = csr[(csr["variant"] == "real") & (csr["epoch"] == 0)].iloc[0]
    assert real0["mean"] == pytest.approx(0.2 + 0.01 * 1.5)

    runs = pd.DataFrame({"study": ["memo"], "git_commit": ["abc"]})
    claims = check_claims(
        "memorization", {"runs": runs, "p_correct": p, "histories": histories()}, study
    )
    verdicts = dict(zip(claims["claim"].str.split(" ").str[0], claims["verdict"], strict=True))
    assert verdicts == {
        "randX": "supported",
        "real": "supported",
        "randY": "supported",
        "the": "supported",
    }
    gof = claims[claims["claim"].str.contains("Binomial")]
    assert (
        gof["test"] == "chi-square goodness of fit to Binomial(seeds, mean P(correct)), level 0.05"
    ).all()
    csr_row = claims[claims["claim"].str.startswith("the critical")].iloc[0]
    assert csr_row["value"] == pytest.approx(0.10 - (-0.05))  # growth randY - real


def test_claims_fail_when_randx_examples_differ():
    study = validated()["studies"]["memo"]
    preds = predictions()
    swap = {"randX": "randY", "randY": "randX"}
    preds["variant"] = preds["variant"].map(lambda v: swap.get(v, v))
    p = output("memorization", "p_correct")({"predictions": preds}, study)
    runs = pd.DataFrame({"study": ["memo"]})
    claims = check_claims(
        "memorization", {"runs": runs, "p_correct": p, "histories": histories()}, study
    )
    by = dict(zip(claims["claim"].str.split(" ").str[0], claims["verdict"], strict=True))
    # randX rejected: contradicted; randY not rejected: "unlike" cannot be shown, inconclusive
    assert by["randX"] == "contradicted" and by["randY"] == "inconclusive"


@pytest.mark.parametrize("name", ["p_correct_sorted", "csr_over_epochs"])
def test_memorization_figures(tmp_path, name):
    study = validated()["studies"]["memo"]
    tables = {
        "p_correct": output("memorization", "p_correct")({"predictions": predictions()}, study),
        "csr": output("memorization", "csr")({"histories": histories()}, study),
    }
    fig = output("memorization", name)(tables)
    assert len(fig.axes) >= 1 and fig.axes[0].get_lines()
    fig.savefig(tmp_path / f"{name}.png")


def test_examples_grid_draws_k_hardest_and_easiest_per_variant():
    study = validated()["studies"]["memo"]
    p = output("memorization", "p_correct")({"predictions": predictions()}, study)
    images = {v: np.zeros((2000, 28, 28), np.uint8) for v in ("real", "randY")}
    fig = examples_grid(p, images, k=4)
    shown = [ax for ax in fig.axes if ax.get_images()]
    assert len(shown) == 2 * 2 * 4  # 2 variants with images x (hardest, easiest) x k
    # randX trained on noise inputs: left out, and the figure says so
    assert "not shown: randX" in fig.get_suptitle()
    fig = examples_grid(p, {v: images["real"] for v in ("real", "randX", "randY")}, k=4)
    assert "not shown" not in fig.get_suptitle()


# --- end to end -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def memo_run(tmp_path_factory):
    wd = copy_workflow(tmp_path_factory.mktemp("memo"))
    (wd / "memo.yaml").write_text(yaml.safe_dump({"studies": {"memo": STUDY}}))
    result = snakemake(wd, "--configfile", "memo.yaml")
    return wd, result.stdout


@pytest.mark.e2e
def test_a_memorization_study_runs_end_to_end(memo_run):
    wd, log = memo_run
    jobs = planned_jobs(log)
    assert jobs["train_seeds0_2"] == 3 * 2 and jobs["labels"] == 3  # one data seed per variant
    tables = wd / "results/memo/tables"
    p = pd.read_parquet(tables / "p_correct.parquet")
    assert len(p) == 3 * 2 * 100 and set(p["n_seeds"]) == {3}
    assert set(p["variant"]) == {"real", "randX", "randY"}
    real = p[p["variant"] == "real"]["p_correct"].mean()
    assert real > p[p["variant"] == "randY"]["p_correct"].mean() + 0.3
    csr = pd.read_parquet(tables / "csr.parquet")
    assert set(csr["epoch"]) == {0, 2} and csr["mean"].between(0, 1).all()
    claims = pd.read_parquet(tables / "claims.parquet")
    assert len(claims) == 2 + 2 * 3 + 2 and set(claims["verdict"]) <= set(VERDICTS)
    for figure in ("p_correct_sorted", "csr_over_epochs", "examples_grid"):
        assert (wd / f"results/memo/figures/{figure}.png").stat().st_size > 10_000
    run = wd / "results/memo/runs/mlp1/flip-p1/sgd-lr0.01-m0.9-wd0-bs128-e2/seed1"
    record = json.loads((run / "run.json").read_text())
    assert record["best_epoch"] == 2 and record["packed_with"] == [0, 1, 2]
    history = pd.read_parquet(run / "history.parquet")
    assert history["csr"].notna().tolist() == [True, False, True]


@pytest.mark.e2e
def test_a_memorization_rerun_does_nothing(memo_run):
    wd, _ = memo_run
    out = snakemake(wd, "-n", "--configfile", "memo.yaml").stdout
    assert planned_jobs(out) == {}


@pytest.mark.e2e
def test_memorization_tables_equal_the_golden_tables(memo_run):
    """A packed study's tables, value for value as committed in tests/golden/."""
    from golden import check_tables

    wd, _ = memo_run
    names = ["runs", "predictions", "histories", "p_correct", "csr", "claims"]
    check_tables(wd / "results/memo/tables", "memo", names)
