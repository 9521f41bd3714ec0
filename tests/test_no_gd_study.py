"""The no_gd study kind (issue 16): run expansion and run ids, config errors, the claims on
synthetic tables (supported, contradicted, not applicable), the figures, and one tiny study end
to end through the snakemake CLI."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
from conftest import copy_workflow, planned_jobs, snakemake  # noqa: E402

from corruptlab.core.config import ConfigError, expand_runs, validate_config  # noqa: E402
from corruptlab.core.params import Param  # noqa: E402
from corruptlab.report.claims import check_claims  # noqa: E402
from corruptlab.studies import STUDIES  # noqa: E402
from corruptlab.studies.no_gd.claims import ES_CHAIN, NOTEBOOK_MODEL  # noqa: E402
from corruptlab.studies.no_gd.figures import ood_auroc_by_method  # noqa: E402
from corruptlab.train.methods import METHODS, Method  # noqa: E402

STUDY = {
    "kind": "no_gd",
    "dataset": "mnist5k",
    "models": ["mlp2"],
    "in_classes": [0, 1, 2, 3, 4, 5],
    "noise": [{"kind": "none"}],
    "optimizers": [{"name": "adadelta", "lr": 1.0, "schedule": {"name": "step", "gamma": 0.7}}],
    "methods": [
        {"name": "gd"},
        {"name": "gd", "optimizers": [{"name": "sgd", "lr": 0.05, "momentum": 0.9}]},
    ],
    "batch_size": 64,
    "max_epochs": 2,
    "patience": 2,
    "seeds": 2,
    "train": {"seeds_per_job": 2},
    "ood": {"synthetic": ["uniform_noise"], "scores": ["msp"]},
}


def _unused(*args):
    raise AssertionError("not trained in this test")


# stand-ins for the methods issue 16 names (registered by corruptlab.train.methods once their
# modules exist); only those not registered yet are added, and removed afterwards
STAND_INS = [
    Method(
        "edge_popup",
        _unused,
        params=(Param("k", "k", float, 0.0, 1.0),),
        frozen_weights=True,
        uses_optimizer=True,
    ),
    Method("bernoulli_supermask", _unused, frozen_weights=True, uses_optimizer=True),
    *[
        Method(
            name,
            _unused,
            params=(Param("population", "p", int, 1, None, default=8),),
            gradient_free=True,
        )
        for name in ES_CHAIN
    ],
]


@pytest.fixture
def stand_ins():
    added = [m.name for m in STAND_INS if m.name not in METHODS]
    for m in STAND_INS:
        if m.name in added:
            METHODS.add(m.name, m)
    yield
    for name in added:
        METHODS._entries.pop(name)


def validated(**changes) -> dict:
    """The config of STUDY with ``changes`` (a key changed to None is left out), validated."""
    study = {k: v for k, v in {**STUDY, **changes}.items() if v is not None}
    config = {"studies": {"ng": study}}
    validate_config(config)
    return config


# --- expansion and validation --------------------------------------------------------------------


def test_runs_are_models_x_methods_with_their_optimizers_x_seeds():
    config = validated()
    runs = expand_runs("ng", config["studies"]["ng"], config)
    assert [r["run_id"] for r in runs] == [
        "mlp2/none/gd/adadelta-lr1-wd0-step-g0.7-bs64/seed0",
        "mlp2/none/gd/adadelta-lr1-wd0-step-g0.7-bs64/seed1",
        "mlp2/none/gd/sgd-lr0.05-m0.9-wd0-bs64/seed0",
        "mlp2/none/gd/sgd-lr0.05-m0.9-wd0-bs64/seed1",
    ]
    assert {r["train_method"]["name"] for r in runs} == {"gd"}
    assert runs[0]["optimizer"]["schedule"] == {"name": "step", "gamma": 0.7}
    assert runs[0]["in_classes"] == [0, 1, 2, 3, 4, 5]


def test_method_parameters_expand_and_name_the_run(stand_ins):
    config = validated(
        methods=[
            {"name": "edge_popup", "k": [0.3, 0.5]},
            {"name": "random_search", "population": 16},
        ],
        max_epochs=[1, 3],
        patience=1,
        seeds=1,
    )
    ids = [r["run_id"] for r in expand_runs("ng", config["studies"]["ng"], config)]
    assert ids == [
        # edge-popup trains its scores with its own SGD: every parameter is in its slug
        "mlp2/none/edge_popup-k0.3-wsigned_constant-sf1-lr0.1-m0.9-wd0/bs64-e1/seed0",
        "mlp2/none/edge_popup-k0.3-wsigned_constant-sf1-lr0.1-m0.9-wd0/bs64-e3/seed0",
        "mlp2/none/edge_popup-k0.5-wsigned_constant-sf1-lr0.1-m0.9-wd0/bs64-e1/seed0",
        "mlp2/none/edge_popup-k0.5-wsigned_constant-sf1-lr0.1-m0.9-wd0/bs64-e3/seed0",
        "mlp2/none/random_search-p16-c0/bs64-e1/seed0",
        "mlp2/none/random_search-p16-c0/bs64-e3/seed0",
    ]
    runs = expand_runs("ng", config["studies"]["ng"], config)
    assert runs[-1]["optimizer"] == {"name": "none"}
    assert runs[-1]["train_method"] == {"name": "random_search", "population": 16, "chunk": 0}


def test_a_method_entry_may_restrict_models_and_set_its_own_budget(stand_ins):
    config = validated(
        models=["mlp2", "conv4"],
        methods=[
            {"name": "gd", "max_epochs": 4, "batch_size": 64},
            {"name": "openai_es", "models": ["mlp2"], "batch_size": [100, 200]},
        ],
        seeds=1,
    )
    runs = expand_runs("ng", config["studies"]["ng"], config)
    assert [r["run_id"] for r in runs] == [
        "mlp2/none/gd/adadelta-lr1-wd0-step-g0.7-bs64-e4/seed0",
        "mlp2/none/openai_es-n16-s0.02-lr0.01-wd0.005-c0/bs100/seed0",
        "mlp2/none/openai_es-n16-s0.02-lr0.01-wd0.005-c0/bs200/seed0",
        "conv4/none/gd/adadelta-lr1-wd0-step-g0.7-bs64-e4/seed0",
    ]
    assert [r["max_epochs"] for r in runs] == [4, 2, 2, 4]
    with pytest.raises(ConfigError) as err:
        validated(methods=[{"name": "gd", "models": ["conv4"], "max_epochs": 1}])
    assert "studies.ng.methods[0].models[0]: 'conv4' is not among the study's models" in str(
        err.value
    )
    assert "studies.ng.methods[0].max_epochs: 1 is below the study's patience 2" in str(err.value)


def test_a_method_entry_may_set_its_own_patience(stand_ins):
    """A search given a budget of examples runs all of it (patience = its max_epochs) while gd
    keeps the study's early stopping; the run dicts say so, and nothing else changes."""
    config = validated(
        methods=[
            {"name": "gd"},
            {"name": "one_plus_one_es", "max_epochs": 1, "patience": 1},
            {"name": "simulated_annealing", "max_epochs": 6, "patience": 6},
        ],
        seeds=1,
    )
    runs = expand_runs("ng", config["studies"]["ng"], config)
    assert [(r["max_epochs"], r["patience"]) for r in runs] == [(2, 2), (1, 1), (6, 6)]
    assert runs[0]["run_id"] == "mlp2/none/gd/adadelta-lr1-wd0-step-g0.7-bs64/seed0"  # unchanged
    with pytest.raises(ConfigError) as err:
        validated(methods=[{"name": "openai_es", "max_epochs": 3, "patience": 4}])
    assert (
        "studies.ng.methods[0].patience: 4 is above the entry's max_epochs 3; accepted: "
        "integers in [1, max_epochs]"
    ) in str(err.value)
    with pytest.raises(ConfigError, match=r"methods\[0\]\.patience: got 0"):
        validated(methods=[{"name": "openai_es", "patience": 0}])


def test_the_readme_lists_every_training_method():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "config" / "README.md").read_text()
    assert [n for n in METHODS if f"| `{n}` |" not in text] == []


def test_figures_follow_the_methods(stand_ins):
    kind = STUDIES.get("no_gd")
    plain = validated()["studies"]["ng"]
    assert "edge_popup_k" not in kind.figure_names(plain)
    assert "mask_density" not in kind.figure_names(plain)
    one_k = validated(methods=[{"name": "edge_popup", "k": 0.5}])["studies"]["ng"]
    assert "edge_popup_k" not in kind.figure_names(one_k)  # a point, not a curve
    assert "mask_density" in kind.figure_names(one_k)
    masked = validated(methods=[{"name": "edge_popup", "k": [0.3, 0.5]}])["studies"]["ng"]
    assert {"edge_popup_k", "mask_density"} <= set(kind.figure_names(masked))


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"methods": [{"name": "ticket_finders"}]},
            "studies.ng.methods[0].name: unknown training method 'ticket_finders'; accepted: gd, ",
        ),
        (
            {"methods": [{"name": "gd", "lr": 0.1}]},
            "studies.ng.methods[0].lr: not a parameter of 'gd'; accepted: no parameters",
        ),
        (
            {"methods": [{"name": "gd", "optimizers": [{"name": "lbfgs", "lr": 1.0}]}]},
            "studies.ng.methods[0].optimizers[0].name: unknown optimizer 'lbfgs'",
        ),
        ({"methods": []}, "studies.ng.methods: got []; accepted: a non-empty list of mappings"),
        (
            {"train": {"seeds_per_job": 2, "packing": "vmap"}, "methods": [{"name": "x"}]},
            "studies.ng.methods[0].name: unknown training method 'x'",
        ),
        (
            {"objective": {"name": "distillation", "temperature": 4, "alpha": 0.5}},
            "studies.ng.objective: a no_gd study trains on 'cross_entropy'",
        ),
        (
            {"ood": {"synthetic": []}, "in_classes": None},
            "studies.ng.ood: a no_gd study needs at least one OOD set",
        ),
        (
            {"methods": [{"name": "gd"}, {"name": "gd"}]},
            "studies.ng: the grid repeats runs",
        ),
    ],
)
def test_config_errors_name_the_key_and_what_is_accepted(changes, message):
    with pytest.raises(ConfigError) as err:
        validated(**changes)
    assert message in str(err.value)


def test_method_errors_of_registered_methods(stand_ins):
    with pytest.raises(ConfigError) as err:
        validated(
            methods=[
                {"name": "random_search", "optimizers": [{"name": "sgd", "lr": 0.1}]},
                {"name": "edge_popup", "k": 1.5},
                {"name": "edge_popup"},
            ],
            train={"seeds_per_job": 2, "packing": "vmap"},
        )
    text = str(err.value)
    assert "studies.ng.methods[0].optimizers: 'random_search' trains without an optimizer" in text
    assert "studies.ng.methods[1].k: got 1.5; accepted: a number in (0, 1]" in text
    assert "studies.ng.train.packing: vmap trains gradient descent only" in text


# --- the train job fits a run by its method --------------------------------------------------


def _search_fit(model, data, cfg, spec, checkpoint, progress, on_epoch):
    """A stand-in gradient-free method: keeps the initial weights, reports two generations of
    ``spec["population"]`` members forwarding 10 examples each."""
    from corruptlab.train.training import TrainResult

    _search_fit.seen = {"spec": spec, "optimizer": cfg.optimizer, "n": len(data.indices)}
    forwarded = spec["population"] * 10
    rows = [
        {
            "epoch": g,
            "examples_forwarded": 0 if g == 0 else forwarded,
            "seconds": 0.01 * g,
            "train_loss": math.nan if g == 0 else 2.0,
            "val_loss": 2.3,
            "val_accuracy": 0.1,
            "sigma": 0.5 / (g + 1),  # a method's own column
        }
        for g in range(3)
    ]
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return TrainResult("ok", "max_epochs", 0, 0.1, state, rows)


@pytest.fixture
def search_method():
    method = Method(
        "test_search",
        _search_fit,
        params=(Param("population", "p", int, 1, None, default=4),),
        gradient_free=True,
    )
    METHODS.add(method.name, method)
    yield method
    METHODS._entries.pop(method.name)


def test_the_train_job_fits_a_run_by_its_method(search_method, tmp_path):
    import torch

    from corruptlab.data.datasets import prepare, save_prepared
    from corruptlab.jobs.labels import make_labels
    from corruptlab.jobs.train import train_job
    from corruptlab.train.models import build_model

    data = tmp_path / "data.pt"
    save_prepared(prepare("mnist5k", split_seed=0), data)
    config = validated(methods=[{"name": "test_search"}], seeds=1)
    config["device"] = "cpu"
    run = expand_runs("ng", config["studies"]["ng"], config)[0]
    assert run["run_id"] == "mlp2/none/test_search-p4/bs64/seed0"
    labels = tmp_path / "labels.npz"
    make_labels(str(data), run["noise"], "ng", 0, str(labels), run.get("in_classes"))
    out = {k: str(tmp_path / "run" / f) for k, f in [
        ("model", "model.pt"), ("history", "history.parquet"), ("run", "run.json")]}  # fmt: skip
    record = train_job([run], str(data), [str(labels)], [out])[0]
    assert _search_fit.seen["spec"] == {"name": "test_search", "population": 4}
    assert _search_fit.seen["optimizer"] == {"name": "none"}
    history = pd.read_parquet(out["history"])
    assert history["examples_forwarded"].tolist() == [0, 40, 40]
    assert history["sigma"].tolist() == [0.5, 0.25, 0.5 / 3]
    assert record["epochs_trained"] == 2 and record["run"]["train_method_id"] == "test_search-p4"
    saved = torch.load(out["model"], weights_only=True)
    model = build_model(saved["model"], tuple(saved["in_shape"]), saved["n_classes"])
    model.load_state_dict(saved["state_dict"])  # a plain state dict of the registered model

    def broken(*args):
        return _search_fit(*args).__class__("ok", "max_epochs", 0, 0.1, {}, [{"epoch": 0}])

    METHODS._entries["test_search"] = Method("test_search", broken, search_method.params)
    fresh = {k: str(tmp_path / "broken" / f) for k, f in [
        ("model", "model.pt"), ("history", "history.parquet"), ("run", "run.json")]}  # fmt: skip
    with pytest.raises(ValueError, match="'test_search': history row 0 .* lacks"):
        train_job([run], str(data), [str(labels)], [fresh])
    assert not (tmp_path / "broken").exists() or not any((tmp_path / "broken").iterdir())


# --- claims on synthetic tables --------------------------------------------------------------


def synthetic(configs: dict[str, tuple[str, float | None, list[float]]], model: str = "mlp2"):
    """runs, histories and ood_runs of configurations ``{config: (method, k, accuracies)}``:
    one run per accuracy (seed), each reaching it at 2 s (history rows at 0, 1 and 2 s)."""
    runs, hist, ood = [], [], []
    for config, (method, k, accs) in configs.items():
        for seed, acc in enumerate(accs):
            run_id = f"{model}/none/{config}/seed{seed}"
            runs.append(
                {
                    "run_id": run_id,
                    "study": "ng",
                    "kind": "no_gd",
                    "dataset": "mnist5k",
                    "model": model,
                    "optimizer": "sgd" if method in ("gd", "edge_popup") else "none",
                    "train_method": method,
                    "train_method_id": config.split("/")[0],
                    "train_method_k": k if k is not None else math.nan,
                    "batch_size": 64,
                    "max_epochs": 2,
                    "seed": seed,
                    "condition": "clean",
                    "severity": 0,
                    "accuracy": acc,
                    "status": "ok",
                }
            )
            digest = "same" if method != "leaky" else None
            for epoch, (sec, a) in enumerate([(0.0, 0.1), (1.0, acc / 2), (1.0, acc)]):
                row = {
                    "run_id": run_id,
                    "epoch": epoch,
                    "examples_forwarded": 0 if epoch == 0 else 100,
                    "seconds": sec,
                    "val_accuracy": a,
                    "model": model,
                    "seed": seed,
                    "max_epochs": 2,
                }
                if method in ("edge_popup", "bernoulli_supermask"):
                    row["frozen_sha256"] = digest
                    row["mask_density.0.weight"] = k or 0.5
                    row["mask_density.2.weight"] = (k or 0.5) / 2
                hist.append(row)
            for ood_set in ("uniform_noise", "held_out_classes"):
                ood.append(
                    {
                        **runs[-1],
                        "ood_set": ood_set,
                        "ood_family": "synthetic",
                        "score": "msp",
                        "auroc": 0.6 + 0.3 * acc,
                        "fpr95": 0.5,
                        "aupr_in": 0.5,
                        "aupr_out": 0.5,
                        "in_accuracy": acc,
                        "n_in": 100,
                        "n_out": 100,
                    }
                )
    return {
        "runs": pd.DataFrame(runs),
        "histories": pd.DataFrame(hist),
        "ood_runs": pd.DataFrame(ood),
    }


def spread(value: float, n: int = 5) -> list[float]:
    return list(value + np.linspace(-0.004, 0.004, n))


def claims_of(tables, **study) -> pd.DataFrame:
    return check_claims("no_gd", tables, {"dataset": "mnist5k", "kind": "no_gd", **study})


def rows(claims: pd.DataFrame, claim_start: str) -> pd.DataFrame:
    return claims[claims["claim"].str.startswith(claim_start)]


def test_claims_supported(stand_ins):
    tables = synthetic(
        {
            "gd/sgd-lr0.1-bs64": ("gd", None, spread(0.97)),
            "edge_popup-k0.5/sgd-lr0.1-bs64": ("edge_popup", 0.5, spread(0.955)),
            "edge_popup-k0.3/sgd-lr0.1-bs64": ("edge_popup", 0.3, spread(0.80)),
            "openai_es-p8/bs64": ("openai_es", None, spread(0.80)),
            "one_plus_one_es-p8/bs64": ("one_plus_one_es", None, spread(0.70)),
            "simulated_annealing-p8/bs64": ("simulated_annealing", None, spread(0.60)),
            "random_search-p8/bs64": ("random_search", None, spread(0.50)),
        }
    )
    claims = claims_of(tables)
    assert set(rows(claims, "the gd baseline learns")["verdict"]) == {"supported"}
    frozen = rows(claims, "frozen weights stay frozen")
    assert len(frozen) == 2 and set(frozen["verdict"]) == {"supported"}
    above = rows(claims, "a supermask on frozen random weights reaches 90%")
    assert above["subject"].tolist() == ["mlp2/none/edge_popup-k0.5/sgd-lr0.1-bs64"]  # k = 0.5
    assert above["verdict"].tolist() == ["supported"] and above["paper_value"].iloc[0] == 0.953
    near = rows(claims, "a supermask comes within 3 points")
    assert near["verdict"].tolist() == ["supported"]
    ranking = rows(claims, "at equal wall clock")
    # the chain's three pairs, then gd against each gradient-free method (genetic: not trained)
    assert len(ranking) == 3 + 5
    genetic = ranking["subject"].str.endswith("gd > genetic")
    assert ranking.loc[genetic, "verdict"].tolist() == ["not applicable"]
    assert set(ranking.loc[~genetic, "verdict"]) == {"supported"}
    assert "within 2 s of training" in ranking["detail"].iloc[0]
    notebook = rows(claims, "the notebook's gd baseline")
    assert notebook["verdict"].tolist() == ["not applicable"]
    assert "'mnist5k'" in notebook["reason"].iloc[0]
    ood = rows(claims, "OOD:")
    assert len(ood) == 7 * 2 and set(ood["verdict"]) == {"reported"}
    assert ood["value"].notna().all() and ood["ci95_low"].notna().all()


def test_a_learned_mask_is_set_beside_zhou_s_learned_mask_whatever_its_weights(stand_ins):
    """Zhou et al.'s learned Bernoulli supermask reaches 95.3% on MNIST FC; the abstract's 86% is
    a mask chosen by a criterion from a trained network, which no learned mask is compared with
    (signed-constant weights once got it)."""
    tables = synthetic(
        {
            "gd/sgd-lr0.1-bs64": ("gd", None, spread(0.97)),
            "bernoulli_supermask/bs64": ("bernoulli_supermask", None, spread(0.91)),
        }
    )
    tables["runs"]["train_method_weights"] = "signed_constant"
    above = rows(claims_of(tables), "a supermask on frozen random weights reaches 90%")
    assert above["paper_value"].tolist() == [0.953]
    assert "learned by SGD" in above["paper_setting"].iloc[0]
    assert "our frozen weights: signed constant" in above["paper_differs"].iloc[0]


def test_claims_contradicted(stand_ins):
    tables = synthetic(
        {
            "gd/sgd-lr0.1-bs64": ("gd", None, spread(0.97)),
            "edge_popup-k0.5/sgd-lr0.1-bs64": ("edge_popup", 0.5, spread(0.85)),
            "openai_es-p8/bs64": ("openai_es", None, spread(0.60)),
            "one_plus_one_es-p8/bs64": ("one_plus_one_es", None, spread(0.70)),
        }
    )
    h = tables["histories"]
    last = h.index[h["run_id"].str.contains("edge_popup") & (h["epoch"] == 2)][0]
    h.loc[last, "frozen_sha256"] = "changed"  # one run's weights moved in its last epoch
    claims = claims_of(tables)
    assert rows(claims, "frozen weights stay frozen")["verdict"].tolist() == ["contradicted"]
    assert rows(claims, "a supermask on frozen")["verdict"].tolist() == ["contradicted"]
    assert rows(claims, "a supermask comes within")["verdict"].tolist() == ["contradicted"]
    ranking = rows(claims, "at equal wall clock").set_index("subject")
    assert ranking.loc["mlp2: openai_es > one_plus_one_es", "verdict"] == "contradicted"
    assert ranking.loc["mlp2: gd > openai_es", "verdict"] == "supported"
    absent = ranking.loc["mlp2: simulated_annealing > random_search"]
    assert absent["verdict"] == "not applicable"
    assert "simulated_annealing nor random_search" in absent["reason"]


def test_the_mask_near_gd_claim_names_the_baselines_optimizer(stand_ins):
    """The supermask-vs-gd rows name the optimizer their baseline was trained with: SGD where
    the study has an SGD run of the network (the papers' baseline), else each of its gd
    optimizers (the default run's gd trains with Adam), the detail saying there is no SGD."""
    configs = {
        "gd/sgd-lr0.1-bs64": ("gd", None, spread(0.97)),
        "edge_popup-k0.5/sgd-lr0.1-bs64": ("edge_popup", 0.5, spread(0.955)),
    }
    near = rows(claims_of(synthetic(configs)), "a supermask comes within 3 points")
    assert near["claim"].tolist() == [
        "a supermask comes within 3 points of the same network trained by SGD"
    ]
    assert near["detail"].iloc[0] == "against mlp2/none/gd/sgd-lr0.1-bs64 (SGD)"
    tables = synthetic(
        {
            "gd/adam-lr0.001-bs64": ("gd", None, spread(0.97)),
            "gd/adadelta-lr1-bs64": ("gd", None, spread(0.96)),
            "edge_popup-k0.5/sgd-lr0.1-bs64": ("edge_popup", 0.5, spread(0.955)),
        }
    )
    runs = tables["runs"]
    for name in ("adam", "adadelta"):
        runs.loc[runs["run_id"].str.contains(f"/gd/{name}-"), "optimizer"] = name
    near = rows(claims_of(tables), "a supermask comes within 3 points")
    assert near["claim"].tolist() == [
        "a supermask comes within 3 points of the same network trained by Adadelta",
        "a supermask comes within 3 points of the same network trained by Adam",
    ]
    assert set(near["verdict"]) == {"supported"}
    assert (
        near["detail"]
        .str.endswith("(the papers compare with SGD; the study trains no mlp2 run by gd with SGD)")
        .all()
    )
    none = rows(claims_of(synthetic(dict(list(configs.items())[1:]))), "a supermask comes")
    assert none["claim"].tolist() == [
        "a supermask comes within 3 points of the same network trained by gradient descent"
    ]
    assert none["verdict"].tolist() == ["not applicable"]


def test_equal_wall_clock_counts_only_the_epochs_within_the_shortest_run(stand_ins):
    """openai_es's last epoch takes 5 s: within the 2 s every other run takes in all it has
    completed one epoch (half its final accuracy), and the detail says so per seed."""
    tables = synthetic(
        {
            "gd/sgd-lr0.1-bs64": ("gd", None, spread(0.97)),
            "openai_es-p8/bs64": ("openai_es", None, spread(0.80)),
            "one_plus_one_es-p8/bs64": ("one_plus_one_es", None, spread(0.70)),
        }
    )
    h = tables["histories"]
    h.loc[h["run_id"].str.contains("openai_es") & (h["epoch"] == 2), "seconds"] = 5.0
    ranking = rows(claims_of(tables), "at equal wall clock").set_index("subject")
    es = ranking.loc["mlp2: openai_es > one_plus_one_es"]
    assert es["verdict"] == "contradicted"
    assert es["value"] == pytest.approx(0.80 / 2 - 0.70)
    assert (
        "within 2 s of training (the shortest run's total; epochs completed within it, per "
        in es["detail"]
    )
    assert "seed: openai_es 1/1/1/1/1, one_plus_one_es 2/2/2/2/2)" in es["detail"]
    # a first epoch of 5 s in one seed: that seed's run is at its initial weights at 2 s
    first = h["run_id"].str.contains("openai_es") & (h["epoch"] == 1)
    h.loc[first[first].index[0], "seconds"] = 5.0
    ranking = rows(claims_of(tables), "at equal wall clock").set_index("subject")
    for subject in ("mlp2: openai_es > one_plus_one_es", "mlp2: gd > openai_es"):
        row = ranking.loc[subject]
        assert row["verdict"] == "not applicable", subject
        assert row["reason"].startswith("openai_es completed no epoch within the 2 s budget")
        assert "openai_es 0/1/1/1/1" in row["detail"] and np.isfinite(row["value"])
    assert ranking.loc["mlp2: gd > one_plus_one_es", "verdict"] == "supported"


def test_claims_not_applicable_without_their_methods():
    tables = synthetic({"gd/adadelta-lr1-bs64": ("gd", None, spread(0.95))})
    claims = claims_of(tables)
    na = claims[claims["verdict"] == "not applicable"]
    for start in (
        "frozen weights",
        "a supermask on frozen",
        "a supermask comes within",
        "at equal wall clock",
        "the notebook's",
    ):
        assert len(rows(na, start)) == 1, start
    assert (
        "no mlp2 run by a gradient-free method" in rows(na, "at equal wall clock")["reason"].iloc[0]
    )
    assert set(rows(claims, "the gd baseline")["verdict"]) == {"supported"}


def test_notebook_claim_on_full_mnist(monkeypatch):
    tables = synthetic({"gd/adadelta-lr1-wd0-step-g0.7-bs64": ("gd", None, spread(0.985))})
    runs = tables["runs"].assign(
        model=NOTEBOOK_MODEL, optimizer="adadelta", lr=1.0, lr_schedule="step-g0.7"
    )
    tables["runs"] = runs
    tables["histories"] = tables["histories"].assign(model=NOTEBOOK_MODEL)
    claims = claims_of(tables, dataset="mnist", max_epochs=4)
    notebook = rows(claims, "the notebook's gd baseline")
    assert notebook["verdict"].tolist() == ["not applicable"]  # 2 epochs, not the notebook's 4
    tables["runs"] = runs.assign(max_epochs=4)
    notebook = rows(claims_of(tables, dataset="mnist", max_epochs=4), "the notebook's gd")
    assert notebook["verdict"].tolist() == ["supported"]
    assert notebook["paper_value"].iloc[0] == 0.99
    subset = claims_of(tables, dataset="mnist", in_classes=[0, 1])
    assert rows(subset, "the notebook's gd")["verdict"].tolist() == ["not applicable"]


def test_budget_table_and_figures(stand_ins, tmp_path):
    tables = synthetic(
        {
            "gd/sgd-lr0.1-bs64": ("gd", None, spread(0.97, 3)),
            "edge_popup-k0.3/sgd-lr0.1-bs64": ("edge_popup", 0.3, spread(0.90, 3)),
            "edge_popup-k0.5/sgd-lr0.1-bs64": ("edge_popup", 0.5, spread(0.95, 3)),
            "random_search-p8/bs64": ("random_search", None, spread(0.50, 3)),
        }
    )
    kind = STUDIES.get("no_gd")
    study = validated()["studies"]["ng"]
    tables["budget"] = kind.output("budget").fn(tables, study)
    b = tables["budget"]
    assert set(b["axis"]) == {"examples_forwarded", "seconds"}
    gd = b[(b["config"] == "mlp2/none/gd/sgd-lr0.1-bs64") & (b["axis"] == "seconds")]
    assert gd["budget"].is_monotonic_increasing and gd["mean"].is_monotonic_increasing
    assert gd["mean"].iloc[-1] == pytest.approx(0.97)  # everything within the largest budget
    assert (gd["n"] == 3).all() and (b["ci95_high"] <= 1).all()
    first = b[b["axis"] == "examples_forwarded"].groupby("config")["budget"].min()
    assert (first == 100).all()  # the smallest positive budget: one row of 100 examples
    tables["ood_metrics"] = kind.output("ood_metrics").fn(tables, study)
    for name in kind.figures:
        fig = kind.output(name).fn(tables)
        assert fig.axes
        fig.savefig(tmp_path / f"{name}.png")


def test_the_ood_figure_separates_networks_that_are_not_trained_classifiers(stand_ins, tmp_path):
    """Searches that end near chance are drawn apart from the trained classifiers (test accuracy
    above 0.5, the sanity claim's threshold), each bar labelled with its accuracy."""
    tables = synthetic(
        {
            "gd/sgd-lr0.1-bs64": ("gd", None, spread(0.97, 3)),
            "edge_popup-k0.5/sgd-lr0.1-bs64": ("edge_popup", 0.5, spread(0.91, 3)),
            "random_search-p8/bs64": ("random_search", None, spread(0.15, 3)),
            "openai_es-p8/bs64": ("openai_es", None, spread(0.18, 3)),
        }
    )
    study = validated()["studies"]["ng"]
    tables["ood_metrics"] = STUDIES.get("no_gd").output("ood_metrics").fn(tables, study)
    fig = ood_auroc_by_method(tables)
    panels = {ax.get_title(): ax for ax in fig.axes}
    assert list(panels) == [
        "trained classifiers (test accuracy > 50%)",
        "not trained classifiers (test accuracy <= 50%)",
    ]
    labels = [[t.get_text() for t in ax.get_legend().get_texts()] for ax in panels.values()]
    assert labels == [
        [
            "mlp2 edge_popup-k0.5 optimizer=sgd (accuracy 91%)",
            "mlp2 gd optimizer=sgd (accuracy 97%)",
        ],
        ["mlp2 openai_es-p8 (accuracy 18%)", "mlp2 random_search-p8 (accuracy 15%)"],
    ]
    assert [len(ax.patches) for ax in panels.values()] == [2 * 2, 2 * 2]  # configs x sets
    assert "conclu" not in fig.get_suptitle() and "chance" in fig.get_suptitle()
    fig.savefig(tmp_path / "ood_auroc_by_method.png")
    assert (tmp_path / "ood_auroc_by_method.png").stat().st_size > 10_000
    metrics = tables["ood_metrics"]
    fig = ood_auroc_by_method({"ood_metrics": metrics[metrics["in_accuracy"] > 0.5]})
    assert [ax.get_title() for ax in fig.axes] == ["trained classifiers (test accuracy > 50%)"]


# --- end to end -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def no_gd_run(tmp_path_factory):
    wd = copy_workflow(tmp_path_factory.mktemp("no_gd"))
    (wd / "ng.yaml").write_text(yaml.safe_dump({"studies": {"ng": STUDY}}))
    result = snakemake(wd, "--configfile", "ng.yaml")
    return wd, result.stdout


@pytest.mark.e2e
def test_a_no_gd_study_runs_end_to_end(no_gd_run):
    wd, log = no_gd_run
    jobs = planned_jobs(log)
    assert jobs["train_seeds0_1"] == 2 and jobs["ood_seeds0_1"] == 2
    tables = wd / "results/ng/tables"
    for name in ("runs", "summary", "budget", "ood_metrics", "ood_runs", "histories", "claims"):
        assert (tables / f"{name}.parquet").is_file(), name
    runs = pd.read_parquet(tables / "runs.parquet")
    assert set(runs["train_method_id"]) == {"gd"}
    assert set(runs["optimizer"]) == {"adadelta", "sgd"}
    histories = pd.read_parquet(tables / "histories.parquet")
    assert set(histories.loc[histories["epoch"] > 0, "examples_forwarded"]) == {2100}  # 6 digits
    claims = pd.read_parquet(tables / "claims.parquet")
    learns = claims[claims["claim"].str.startswith("the gd baseline learns")]
    assert len(learns) == 2 and set(learns["verdict"]) <= {"supported", "inconclusive"}
    ood = claims[claims["claim"].str.startswith("OOD:")]
    assert set(ood["subject"].str.split(" vs ").str[1]) == {"uniform_noise", "held_out_classes"}
    figures = wd / "results/ng/figures"
    drawn = {p.stem for p in figures.glob("*.png")}
    assert drawn == {"accuracy_vs_examples", "accuracy_vs_seconds", "ood_auroc_by_method"}
    assert (wd / "results/ng/ng.html").is_file()
    out = snakemake(wd, "-n", "--configfile", "ng.yaml").stdout
    assert planned_jobs(out) == {}
