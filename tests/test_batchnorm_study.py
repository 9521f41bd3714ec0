"""The batchnorm study kind (issue 18): run expansion and run ids, config errors, the named
initialisations, the measurements at initialisation, the tables and claims on synthetic runs
(supported, contradicted, not applicable), the figures, a tiny study end to end through the
snakemake CLI, and the full config planned."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from conftest import copy_workflow, planned_jobs, snakemake  # noqa: E402
from torch import nn  # noqa: E402

from corruptlab.core.config import ConfigError, expand_runs, validate_config  # noqa: E402
from corruptlab.report.claims import check_claims  # noqa: E402
from corruptlab.studies import STUDIES, load  # noqa: E402
from corruptlab.train.inits import INITS, initialise  # noqa: E402
from corruptlab.train.models import build_model  # noqa: E402
from corruptlab.train.probes import init_probe, probed_layers  # noqa: E402
from corruptlab.train.training import seeded_model  # noqa: E402

load()  # the built-in study kinds, registered in their order (batchnorm among them)

STUDY = {
    "kind": "batchnorm",
    "dataset": "mnist5k",
    "models": ["mlp_d10", "mlp_d10_bn"],
    "init": ["kaiming"],
    "noise": [{"kind": "none"}],
    "optimizers": [{"name": "sgd", "lr": [0.01, 3.0], "momentum": 0.9, "weight_decay": 0.0005}],
    "batch_size": 128,
    "max_epochs": 1,
    "seeds": 2,
    "train": {"seeds_per_job": 2},
    "moderate_lr": 0.01,
    "probe": {"batches": 2, "step_sizes": [0.001, 1.0]},
}


def validated(**changes) -> dict:
    study = {k: v for k, v in {**STUDY, **changes}.items() if v is not None}
    config = {"studies": {"bn": study}}
    validate_config(config)
    return config


# --- expansion and validation --------------------------------------------------------------------


def test_runs_are_inits_x_models_x_lrs_x_seeds_and_train_every_epoch():
    config = validated(init=["kaiming", "xavier"], seeds=1)
    runs = expand_runs("bn", config["studies"]["bn"], config)
    ids = [r["run_id"] for r in runs]
    assert ids == [
        f"{m}/none/{init}/sgd-lr{lr}-m0.9-wd0.0005-bs128/seed0"
        for init in ("kaiming", "xavier")
        for m in ("mlp_d10", "mlp_d10_bn")
        for lr in ("0.01", "3")
    ]
    assert {r["init"] for r in runs[:4]} == {"kaiming"} and runs[-1]["init"] == "xavier"
    # no early stopping, the last weights kept, the probe's settings in every run
    assert {(r["patience"], r["restore_best"]) for r in runs} == {(1, False)}
    assert runs[0]["probe"] == {"batches": 2, "step_sizes": [0.001, 1.0]}


def test_probe_defaults():
    config = validated(probe=None, init=None, moderate_lr=None, optimizers=[
        {"name": "sgd", "lr": [0.1, 1.0], "momentum": 0.9}
    ])  # fmt: skip
    study = config["studies"]["bn"]
    assert study["init"] == ["kaiming"] and study["moderate_lr"] == 0.1
    assert study["probe"] == {
        "batches": 4,
        "step_sizes": [0.0001, 0.001, 0.01, 0.1, 0.3, 1, 3],
    }


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"init": ["he"]},
            "studies.bn.init[0]: unknown initialisation 'he'; accepted: kaiming, xavier",
        ),
        (
            {"moderate_lr": 0.1},
            "studies.bn.moderate_lr: 0.1 is not one of the study's learning rates; "
            "accepted: 0.01, 3",
        ),
        (
            {"models": ["mlp_d10", "mlp_d20_bn"]},
            "studies.bn.models: no batch-norm model together with its twin without batch norm; "
            "accepted: a pair such as conv4_bn with conv4, mlp_d10_bn with mlp_d10",
        ),
        ({"probe": {"batches": 0}}, "studies.bn.probe.batches: got 0; accepted:"),
        (
            {"train": {"seeds_per_job": 2, "packing": "vmap"}},
            "studies.bn.train.packing: a batchnorm study measures each run at initialisation on "
            "its own model, which vmap's stacked seeds do not give; accepted: sequential",
        ),
        ({"probe": {"steps": [1]}}, "studies.bn.probe: "),
        (
            {"noise": [{"kind": "none"}, {"kind": "uniform", "alpha": 1}]},
            "studies.bn: trains each model in 2 settings besides its learning rates "
            "(none/sgd-lr*-m0.9-wd0.0005-bs128, uniform-a1/sgd-lr*-m0.9-wd0.0005-bs128), but its "
            "tables, claims and figures compare runs per model, init and lr and would average "
            "over them; accepted: one noise setting and one optimizer setting apart from lr",
        ),
        (
            {"batch_size": [64, 128]},
            "studies.bn: trains each model in 2 settings besides its learning rates "
            "(none/sgd-lr*-m0.9-wd0.0005-bs64, none/sgd-lr*-m0.9-wd0.0005-bs128)",
        ),
    ],
)
def test_config_errors_name_the_key_and_what_is_accepted(changes, message):
    with pytest.raises(ConfigError) as err:
        validated(**changes)
    assert message in str(err.value)


def test_learning_rates_of_several_optimizer_entries_are_one_setting():
    """The lr grid is the study's axis: lrs spread over two optimizer entries are accepted."""
    sgd = STUDY["optimizers"][0]
    config = validated(optimizers=[{**sgd, "lr": 0.01}, {**sgd, "lr": [1e-5, 3.0]}])
    runs = expand_runs("bn", config["studies"]["bn"], config)
    lrs = sorted({r["optimizer"]["lr"] for r in runs})
    assert lrs == [1e-5, 0.01, 3.0]


def test_a_colour_dataset_trains_but_refuses_grey_test_sets():
    config = validated(dataset="cifar10")
    assert expand_runs("bn", config["studies"]["bn"], config)[0]["dataset"] == "cifar10"
    study = {
        "kind": "corruption_tta",
        "dataset": "cifar10",
        "models": ["conv4_bn"],
        "noise": [{"kind": "none"}],
        "optimizers": [{"name": "adam", "lr": 0.001}],
        "evaluation": {"corruptions": ["gaussian_noise"]},
    }
    with pytest.raises(ConfigError) as err:
        validate_config({"studies": {"tta": study}})
    assert (
        "studies.tta.evaluation.corruptions: the corrupted and OOD test sets are made of grey "
        "images, and 'cifar10' is a colour dataset; accepted: no evaluation.corruptions with a "
        "colour dataset"
    ) in str(err.value)


# --- initialisations and measurements at init -----------------------------------------------------


def test_named_inits_draw_from_the_seed_with_their_variance():
    def built(init: str, seed: int) -> nn.Module:
        return seeded_model(lambda: initialise(build_model("mlp_d10", (1, 28, 28), 10), init), seed)

    assert INITS.names() == ["kaiming", "xavier"]
    a, b = built("kaiming", 3), built("kaiming", 3)
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q), name
    hidden = a[3].weight  # a 128 x 128 layer
    assert hidden.std().item() == pytest.approx(math.sqrt(2 / 128), rel=0.05)
    assert float(a[3].bias.detach().abs().sum()) == 0.0
    xavier = built("xavier", 3)[3].weight
    assert xavier.std().item() == pytest.approx(math.sqrt(2 / 256), rel=0.05)
    first = built("kaiming", 3)[1].weight  # 784 -> 128
    assert first.std().item() == pytest.approx(math.sqrt(2 / 784), rel=0.05)


def _batches(n: int = 2, size: int = 32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(size, 1, 28, 28, generator=g), torch.randint(0, 10, (size,), generator=g))
        for _ in range(n)
    ]


def test_probe_measures_every_layer_and_leaves_the_model_alone():
    model = seeded_model(lambda: build_model("mlp_d10_bn", (1, 28, 28), 10), 0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    row = init_probe(model, _batches(), [1e-6, 0.1])
    for k, v in model.state_dict().items():  # weights and batch norm's running statistics
        assert torch.equal(v, before[k]), k
    assert len(probed_layers(model)) == 11
    expected = {f"probe.grad_norm.L{i:02d}.b{b}" for i in range(1, 12) for b in (0, 1)}
    for q in ("grad_tail", "act_mean", "act_std"):
        expected |= {f"probe.{q}.L{i:02d}" for i in range(1, 12)}
    expected |= {"probe.relative_loss.s1e-06", "probe.relative_loss.s0.1"}
    assert set(row) == expected
    assert all(math.isfinite(v) for v in row.values())
    # a tiny step along the negative gradient lowers the loss a little
    assert 1 - 1e-3 < row["probe.relative_loss.s1e-06"] < 1
    assert row == init_probe(model, _batches(), [1e-6, 0.1])  # deterministic


def test_probe_values_match_a_direct_computation():
    """On a perceptron (one layer): the gradient norm of the loss on each batch, the output's
    per-channel statistics, and the loss after one step, computed here by hand."""
    model = seeded_model(lambda: build_model("perceptron", (1, 28, 28), 10), 1)
    batches = _batches(n=2, size=16, seed=4)
    row = init_probe(model, batches, [0.05])
    ratios = []
    for b, (x, y) in enumerate(batches):
        w = model[1].weight.detach().clone().requires_grad_(True)
        bias = model[1].bias.detach().clone().requires_grad_(True)
        loss = nn.functional.cross_entropy((x.flatten(1) @ w.T + bias).double(), y)
        g, g_bias = torch.autograd.grad(loss, (w, bias))
        assert row[f"probe.grad_norm.L01.b{b}"] == pytest.approx(g.double().norm().item())
        logits = x.flatten(1) @ (w - 0.05 * g).T + (bias - 0.05 * g_bias)  # every parameter
        stepped = nn.functional.cross_entropy(logits.double(), y)
        ratios.append(stepped.item() / loss.item())
    assert row["probe.relative_loss.s0.05"] == pytest.approx(np.mean(ratios), rel=1e-5)
    out = torch.cat([model(x) for x, _ in batches[:1]]).double()
    assert row["probe.act_std.L01"] == pytest.approx(
        np.mean([model(x).double().std(0, unbiased=False).mean().item() for x, _ in batches])
    )
    assert out.shape == (16, 10)


def test_without_bn_a_large_step_blows_the_loss_up_and_with_bn_it_does_not():
    """Bjorck et al.'s Fig. 3 on a 20-layer MLP at kaiming init: a step of 3 along the
    gradient multiplies the loss by orders of magnitude without batch norm, not with it."""
    ratios = {}
    for name in ("mlp_d20", "mlp_d20_bn"):
        model = seeded_model(
            lambda n=name: initialise(build_model(n, (1, 28, 28), 10), "kaiming"), 0
        )
        ratios[name] = init_probe(model, _batches(size=64), [3.0])["probe.relative_loss.s3"]
    assert ratios["mlp_d20"] > 100
    assert ratios["mlp_d20_bn"] < 10


def test_the_train_job_trains_a_resnet_pair_on_colour_images_and_measures_it(tmp_path):
    """A run of each ResNet on a tiny CIFAR-shaped dataset (3 x 32 x 32): trained every epoch,
    its initial weights drawn by the named init from (study, seed, "init"), and measured at
    initialisation (epoch 0's history row) on the same minibatches for both lrs of a seed."""
    import sys

    from corruptlab.data.datasets import prepare, save_prepared
    from corruptlab.jobs.labels import make_labels
    from corruptlab.jobs.train import train_job

    sys.path.insert(0, str(Path(__file__).parent))
    from test_datasets import write_cifar_archive

    raw = tmp_path / "raw"
    raw.mkdir()
    write_cifar_archive(raw / "cifar-10-python.tar.gz", per_batch=10)
    data = tmp_path / "data.pt"
    save_prepared(prepare("cifar10", raw, split_seed=0, n_val=10), data)
    config = validated(
        dataset="cifar10",
        models=["resnet_preact", "resnet_preact_bn"],
        init=["xavier"],
        optimizers=[{"name": "sgd", "lr": [0.01, 0.1], "momentum": 0.9}],
        moderate_lr=0.1,
        batch_size=16,
        seeds=1,
        train=None,
    )
    config["device"] = "cpu"
    runs = expand_runs("bn", config["studies"]["bn"], config)
    labels = tmp_path / "labels.npz"
    make_labels(str(data), runs[0]["noise"], "bn", 0, str(labels))
    rows = {}
    for run in runs:
        files = {"model": "model.pt", "history": "history.parquet", "run": "run.json"}
        out = {k: str(tmp_path / run["run_id"] / f) for k, f in files.items()}
        record = train_job([run], str(data), [str(labels)], [out])[0]
        assert record["epochs_trained"] == 1 and record["run"]["init"] == "xavier"
        rows[run["run_id"]] = pd.read_parquet(out["history"]).set_index("epoch")
        saved = torch.load(out["model"], weights_only=True)
        assert saved["in_shape"] == [3, 32, 32]
    first = rows["resnet_preact_bn/none/xavier/sgd-lr0.01-m0.9-wd0-bs16/seed0"].loc[0]
    second = rows["resnet_preact_bn/none/xavier/sgd-lr0.1-m0.9-wd0-bs16/seed0"].loc[0]
    probe = [c for c in first.index if c.startswith("probe.")]
    assert len([c for c in probe if c.startswith("probe.act_std.")]) == 14  # 13 convs, 1 linear
    assert first[probe].to_dict() == second[probe].to_dict()  # same init, same minibatches
    assert rows["resnet_preact/none/xavier/sgd-lr0.1-m0.9-wd0-bs16/seed0"].loc[1, "train_loss"] > 0


# --- tables and claims on synthetic runs ---------------------------------------------------------

LRS = [0.001, 0.01, 0.1, 0.3, 1.0]


def synthetic(
    outcome, inits=("kaiming",), n_layers: int = 11, mean_growth=(1.1, 1.0)
) -> dict[str, pd.DataFrame]:
    """runs and histories of the mlp_d10 pair: ``outcome(model, init, lr, seed)`` gives
    (status, accuracy); the probe columns grow with depth without BN and stay flat with it; the
    per-channel |mean| grows by ``mean_growth`` (without BN, with BN) per layer, its last hidden
    layer off by 3% per seed."""
    runs, hist = [], []
    for init in inits:
        for model in ("mlp_d10", "mlp_d10_bn"):
            for lr in LRS:
                for seed in range(3):
                    status, acc = outcome(model, init, lr, seed)
                    run_id = f"{model}/none/{init}/sgd-lr{lr:g}-m0.9-wd0.0005-bs128/seed{seed}"
                    runs.append(
                        {
                            "run_id": run_id,
                            "study": "bn",
                            "kind": "batchnorm",
                            "dataset": "mnist5k",
                            "model": model,
                            "init": init,
                            "optimizer": "sgd",
                            "lr": lr,
                            "batch_size": 128,
                            "max_epochs": 3,
                            "seed": seed,
                            "condition": "clean",
                            "severity": 0,
                            "accuracy": acc,
                            "status": status,
                            "epochs_trained": 1 if status == "diverged" else 3,
                            "device": "cpu",
                        }
                    )
                    row = {"run_id": run_id, "epoch": 0, "model": model, "seed": seed}
                    grow = 1.0 if model.endswith("_bn") else 1.3
                    for layer in range(1, n_layers + 1):
                        for b in range(2):
                            row[f"probe.grad_norm.L{layer:02d}.b{b}"] = (
                                grow**layer * (1 + 0.01 * seed) * (1 + 0.1 * b)
                            )
                        row[f"probe.act_std.L{layer:02d}"] = grow**layer * (1 + 0.02 * seed)
                        mean = mean_growth[model.endswith("_bn")] ** layer
                        jitter = 1 + 0.03 * seed * (layer == n_layers - 1)
                        row[f"probe.act_mean.L{layer:02d}"] = 0.4 * mean * jitter
                        row[f"probe.grad_tail.L{layer:02d}"] = 5.0 * grow**2 + 0.1 * seed
                    for eta in (0.01, 1.0):
                        blow = 1e6 if (eta == 1.0 and not model.endswith("_bn")) else 0.9
                        row[f"probe.relative_loss.s{eta:g}"] = blow
                    hist.append(row)
                    hist.append({"run_id": run_id, "epoch": 1, "model": model, "seed": seed})
    return {"runs": pd.DataFrame(runs), "histories": pd.DataFrame(hist)}


def paper_like(model, init, lr, seed):
    """With BN: trains up to lr 1; without: trains up to 0.01, diverges from 0.1 on."""
    if model.endswith("_bn"):
        return "ok", 0.95 - 0.01 * seed - (0.05 if lr == 0.001 else 0)
    if lr >= 0.1:
        return "diverged", 0.098
    return "ok", 0.93 - 0.01 * seed


def tables_of(raw: dict[str, pd.DataFrame], **study) -> dict[str, pd.DataFrame]:
    kind = STUDIES.get("batchnorm")
    study = validated(moderate_lr=0.1, optimizers=[{"name": "sgd", "lr": LRS}], **study)
    study = study["studies"]["bn"]
    tables = dict(raw)
    for name in ("lr_sweep", "max_lr", "init_probe", "init_probe_summary"):
        tables[name] = kind.output(name).fn(tables, study)
    tables["claims"] = check_claims("batchnorm", tables, study)
    return tables


def rows(claims: pd.DataFrame, start: str) -> pd.DataFrame:
    return claims[claims["claim"].str.startswith(start)]


def test_lr_sweep_and_max_lr():
    tables = tables_of(synthetic(paper_like))
    sweep = tables["lr_sweep"].set_index(["model", "lr"])
    assert sweep.loc[("mlp_d10", 0.3), "n_diverged"] == 3
    assert sweep.loc[("mlp_d10", 0.3), "n"] == 0  # no accuracy of a diverged run is averaged
    assert sweep.loc[("mlp_d10", 0.3), "first_diverged_epoch"] == 1
    assert sweep.loc[("mlp_d10_bn", 1.0), "mean"] == pytest.approx(0.94)
    assert sweep.loc[("mlp_d10_bn", 1.0), "n_trains"] == 3
    best = tables["max_lr"].set_index("model")
    assert best.loc["mlp_d10", "max_lr_finite"] == 0.01 == best.loc["mlp_d10", "max_lr_trains"]
    assert best.loc["mlp_d10_bn", "max_lr_trains"] == 1.0
    assert bool(best.loc["mlp_d10_bn", "at_grid_top"]) is True


def test_init_probe_tables_are_long_and_one_per_seed():
    tables = tables_of(synthetic(paper_like))
    probe = tables["init_probe"]
    # one (model, init, seed) each, though every lr's run measured the same initial weights
    assert probe.groupby(["model", "seed"])["run_id"].nunique().eq(1).all()
    assert set(probe["lr"]) == {0.001}
    grad = probe[(probe["quantity"] == "grad_norm") & (probe["model"] == "mlp_d10")]
    assert len(grad) == 3 * 11 * 2 and set(grad["batch"]) == {0, 1}
    rel = probe[probe["quantity"] == "relative_loss"]
    assert set(rel["step_size"]) == {0.01, 1.0} and rel["layer"].isna().all()
    s = tables["init_probe_summary"]
    at = s[(s["quantity"] == "act_std") & (s["model"] == "mlp_d10") & (s["layer"] == 11)]
    assert at["mean"].iloc[0] == pytest.approx(11 * math.log10(1.3) + math.log10(1.02), abs=0.01)
    assert (s["scale"] == "log10").all() and (s["n"] == 3).all()


def test_claims_supported_when_the_numbers_behave_as_the_paper_says():
    claims = tables_of(synthetic(paper_like))["claims"]
    assert rows(claims, "with batch norm the model learns")["verdict"].tolist() == ["supported"]
    ratio = rows(claims, "the largest lr that trains")
    assert ratio["verdict"].tolist() == ["supported"]
    assert ratio["value"].iloc[0] == pytest.approx(2.0)  # log10(1 / 0.01)
    assert ratio["paper_value"].iloc[0] == 3.0  # Bjorck et al.'s 1e-4 vs 0.1
    assert "Fig. 1" in ratio["paper_source"].iloc[0]
    assert rows(claims, "without batch norm the deep MLP diverges")["verdict"].tolist() == [
        "supported"
    ]
    on = rows(claims, "with batch norm the deep MLP trains")
    assert on["subject"].tolist() == ["mlp_d10_bn, lr 0.3", "mlp_d10_bn, lr 1"]
    assert set(on["verdict"]) == {"supported"}
    best = rows(claims, "the best accuracy over the lr grid")
    assert best["verdict"].tolist() == ["supported"]
    assert best["value"].iloc[0] == pytest.approx(0.02)
    growth = claims[claims["claim"].str.contains("grow|flat")]
    assert len(growth) == 6 and set(growth["verdict"]) == {"supported"}
    grads = rows(claims, "at init, without batch norm, gradient norms")
    assert grads["value"].iloc[0] == pytest.approx(8 * math.log10(1.3))  # layer 10 over 2
    tails = rows(claims, "at init, the gradients of a middle layer are heavier-tailed")
    assert tails["verdict"].tolist() == ["supported"]
    assert tails["detail"].iloc[0].startswith("layer 6;")  # the middle of 11
    refused = rows(claims, "batch norm wins at a small, equal lr")
    assert refused["verdict"].tolist() == ["not applicable"]
    assert "deliberately not claimed" in refused["reason"].iloc[0]


def test_activation_mean_grows_without_bn_and_stays_flat_with_it():
    claims = tables_of(synthetic(paper_like))["claims"]
    grows = rows(claims, "at init, without batch norm, per-channel activation |means| grow")
    assert grows["verdict"].tolist() == ["supported"]
    assert grows["subject"].tolist() == ["mlp_d10, kaiming"]
    # layer 10 over layer 2: 8 layers of 1.1x, the last hidden layer 0/3/6% higher per seed
    expected = [8 * math.log10(1.1) + math.log10(1 + 0.03 * s) for s in range(3)]
    assert grows["value"].iloc[0] == pytest.approx(np.mean(expected))
    assert grows["criterion"].iloc[0].endswith("without BN > 0")
    assert "Fig. 5" in grows["paper_source"].iloc[0] and math.isnan(grows["paper_value"].iloc[0])
    flat = rows(claims, "at init, with batch norm, per-channel activation |means| stay flat")
    assert flat["verdict"].tolist() == ["supported"] and flat["subject"].iloc[0].startswith(
        "mlp_d10_bn"
    )
    assert flat["value"].iloc[0] == pytest.approx(
        np.mean([math.log10(1.03), math.log10(1.06)]) / 1.5
    )
    assert flat["criterion"].iloc[0].endswith("with BN < 0.1")
    # the other way round: without BN the mean shrinks with depth, with BN it grows 1.1x a layer
    claims = tables_of(synthetic(paper_like, mean_growth=(0.9, 1.1)))["claims"]
    grows = rows(claims, "at init, without batch norm, per-channel activation |means| grow")
    assert grows["verdict"].tolist() == ["contradicted"] and grows["value"].iloc[0] < 0
    flat = rows(claims, "at init, with batch norm, per-channel activation |means| stay flat")
    assert flat["verdict"].tolist() == ["contradicted"]
    assert flat["value"].iloc[0] == pytest.approx(np.mean(expected))
    # 1.02x a layer: per seed 0.069 to 0.094 in log10, each inside 0.1, but the CI over three
    # seeds reaches past it
    claims = tables_of(synthetic(paper_like, mean_growth=(1.1, 1.02)))["claims"]
    flat = rows(claims, "at init, with batch norm, per-channel activation |means| stay flat")
    assert flat["verdict"].tolist() == ["inconclusive"]
    assert flat["ci95_low"].iloc[0] < 0.1 < flat["ci95_high"].iloc[0]


def test_claims_contradicted_when_no_bn_trains_at_high_lr():
    def no_divergence(model, init, lr, seed):
        return "ok", 0.9 - 0.01 * seed  # both models train everywhere

    claims = tables_of(synthetic(no_divergence))["claims"]
    assert rows(claims, "without batch norm the deep MLP diverges")["verdict"].tolist() == [
        "contradicted"
    ]
    ratio = rows(claims, "the largest lr that trains")
    assert ratio["verdict"].tolist() == ["contradicted"] and ratio["value"].iloc[0] == 0


def test_a_run_at_chance_is_not_diverged_and_does_not_train():
    def stuck(model, init, lr, seed):
        if not model.endswith("_bn") and lr >= 0.1:
            return "ok", 0.11  # finite loss, chance accuracy
        return paper_like(model, init, lr, seed)

    tables = tables_of(synthetic(stuck))
    best = tables["max_lr"].set_index("model")
    assert best.loc["mlp_d10", "max_lr_finite"] == 1.0
    assert best.loc["mlp_d10", "max_lr_trains"] == 0.01
    off = rows(tables["claims"], "without batch norm the deep MLP diverges")
    assert off["verdict"].tolist() == ["contradicted"]
    assert off["detail"].iloc[0].startswith("0 of 6 runs diverged at lr 0.3/1; 6 finite but not")


def test_claims_not_applicable_without_kaiming_runs():
    claims = tables_of(synthetic(paper_like, inits=("xavier",)), init=["xavier"])["claims"]
    assert rows(claims, "the largest lr that trains")["verdict"].tolist() == ["not applicable"]
    assert rows(claims, "without batch norm the deep MLP diverges")["verdict"].tolist() == [
        "not applicable"
    ]


def test_figures_draw(tmp_path):
    tables = tables_of(synthetic(paper_like, inits=("kaiming", "xavier")))
    kind = STUDIES.get("batchnorm")
    study = validated()["studies"]["bn"]
    assert kind.figure_names(study) == (
        "accuracy_vs_lr",
        "grad_norm_hist",
        "gradients_vs_depth",
        "activations_vs_depth",
        "relative_loss_vs_step",
    )
    for name in kind.figures:
        fig = kind.output(name).fn(tables)
        assert len([ax for ax in fig.axes if ax.get_visible()]) >= 2, name  # one per init
        fig.savefig(tmp_path / f"{name}.png")


def test_accuracy_vs_lr_marks_means_over_fewer_seeds_hollow():
    def one_survivor(model, init, lr, seed):
        if model == "mlp_d10" and lr == 0.1:
            return ("ok", 0.9) if seed == 2 else ("diverged", 0.098)  # one seed of three left
        return paper_like(model, init, lr, seed)

    def markers(fig, face):
        return [
            (list(line.get_xdata()), list(line.get_ydata()))
            for line in fig.axes[0].lines
            if line.get_marker() == "o" and line.get_markerfacecolor() == face
            and len(line.get_xdata())
        ]  # fmt: skip

    figure = STUDIES.get("batchnorm").output("accuracy_vs_lr").fn
    fig = figure(tables_of(synthetic(one_survivor)))
    assert markers(fig, "white") == [([0.1], [pytest.approx(90.0)])]
    filled = [x for xs, _ in markers(fig, "tab:red") for x in xs]
    assert filled == [0.001, 0.01]  # mlp_d10's lrs where all three seeds are averaged
    assert "hollow: mean over fewer than 3 seeds (the others diverged)" in fig._suptitle.get_text()
    # no point over fewer seeds: nothing hollow, and no caption line for it
    fig = figure(tables_of(synthetic(paper_like)))
    assert markers(fig, "white") == [] and "hollow" not in fig._suptitle.get_text()


def test_activations_figure_draws_the_mean_beside_the_std():
    tables = tables_of(synthetic(paper_like))
    fig = STUDIES.get("batchnorm").output("activations_vs_depth").fn(tables)
    std, mean = fig.axes[:2]
    assert std.get_ylabel() == "log10 activation std" and mean.get_ylabel().endswith("|mean|")
    s = tables["init_probe_summary"]
    for ax, quantity in ((std, "act_std"), (mean, "act_mean")):
        drawn = {line.get_label(): line.get_ydata() for line in ax.lines}
        for model in ("mlp_d10", "mlp_d10_bn"):
            want = s[(s["quantity"] == quantity) & (s["model"] == model)].sort_values("layer")
            np.testing.assert_allclose(drawn[model], want["mean"])
    # the |mean| grows 1.1x a layer without BN, flat with it (log10: 0.041 a layer, 0)
    drawn = {line.get_label(): line.get_ydata() for line in mean.lines}
    assert np.diff(drawn["mlp_d10"])[:8] == pytest.approx(math.log10(1.1), abs=1e-6)
    assert np.diff(drawn["mlp_d10_bn"])[:8] == pytest.approx(0, abs=1e-6)


# --- end to end -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bn_run(tmp_path_factory):
    wd = copy_workflow(tmp_path_factory.mktemp("batchnorm"))
    (wd / "bn.yaml").write_text(yaml.safe_dump({"studies": {"bn": STUDY}}))
    result = snakemake(wd, "--configfile", "bn.yaml")
    return wd, result.stdout


@pytest.mark.e2e
def test_a_batchnorm_study_runs_end_to_end(bn_run):
    wd, log = bn_run
    assert planned_jobs(log)["train_seeds0_1"] == 4
    tables = wd / "results/bn/tables"
    runs = pd.read_parquet(tables / "runs.parquet")
    clean = runs[runs["condition"] == "clean"].set_index("run_id")
    assert len(clean) == 8 and set(clean["init"]) == {"kaiming"}
    no_bn_high = clean[(clean["model"] == "mlp_d10") & (clean["lr"] == 3.0)]
    assert set(no_bn_high["status"]) == {"diverged"}  # a non-finite loss in the first epoch
    assert set(clean.loc[clean["model"] == "mlp_d10_bn", "status"]) == {"ok"}
    probe = pd.read_parquet(tables / "init_probe.parquet")
    assert set(probe["quantity"]) == {"grad_norm", "grad_tail", "act_mean", "act_std",
                                      "relative_loss"}  # fmt: skip
    assert len(probe.drop_duplicates(["model", "seed"])) == 4
    # the measurement is a function of (study, seed): equal in the lr 0.01 and lr 3 runs
    h = pd.read_parquet(tables / "histories.parquet")
    h = h[h["epoch"] == 0].set_index("run_id")
    columns = [c for c in h if c.startswith("probe.")]
    a = h.loc["mlp_d10/none/kaiming/sgd-lr0.01-m0.9-wd0.0005-bs128/seed1", columns]
    b = h.loc["mlp_d10/none/kaiming/sgd-lr3-m0.9-wd0.0005-bs128/seed1", columns]
    assert a.to_dict() == b.to_dict()
    claims = pd.read_parquet(tables / "claims.parquet")
    learns = claims[claims["claim"].str.startswith("with batch norm the model learns")]
    assert learns["verdict"].tolist() == ["supported"]
    figures = {p.stem for p in (wd / "results/bn/figures").glob("*.png")}
    assert figures == {
        "accuracy_vs_lr",
        "grad_norm_hist",
        "gradients_vs_depth",
        "activations_vs_depth",
        "relative_loss_vs_step",
    }
    assert (wd / "results/bn/bn.html").is_file()
    assert planned_jobs(snakemake(wd, "-n", "--configfile", "bn.yaml").stdout) == {}


@pytest.mark.e2e
def test_the_full_and_quick_configs_plan(tmp_path):
    wd = copy_workflow(tmp_path)
    full = planned_jobs(snakemake(wd, "-n", "--configfile", "config/studies/batchnorm.yaml").stdout)
    # MNIST: 8 models x 2 inits x 10 lrs; CIFAR-10: 6 models x 2 inits x 10 lrs; 3 seeds a job
    assert full["train_seeds0_2"] == 160 + 120 and full["download"] == 2
    assert full["prepare"] == 2
    quick = planned_jobs(
        snakemake(wd, "-n", "--configfile", "config/studies/batchnorm_quick.yaml").stdout
    )
    assert quick["train_seeds0_2"] == 14 and "download" not in quick
