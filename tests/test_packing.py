"""Packed training (several seeds in one process) against the same seeds trained one by one."""

from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest
import torch
import yaml
from conftest import copy_workflow, planned_jobs, snakemake
from test_training import cfg, tiny_model, toy_data, without_seconds
from torch import nn

from corruptlab.train import packing
from corruptlab.train.models import MODELS, build_model, models_where
from corruptlab.train.packing import PACKED_TOLERANCE, train_packed
from corruptlab.train.training import TrainData, seeded_model, train

SEEDS = [3, 11, 42]


def noisy_data(seed: int, shared: TrainData) -> TrainData:
    """The shared images and validation set, with this seed's own noisy training labels (alpha
    = 1: every example once clean, once with a random label), as the labels rule draws them."""
    g = torch.Generator().manual_seed(seed)
    n = len(shared.images)
    idx = torch.cat([torch.arange(n), torch.arange(n)])
    labels = torch.cat([shared.labels[:n], torch.randint(0, 2, (n,), generator=g)])
    return TrainData(shared.images, idx, labels, shared.val_images, shared.val_labels)


def both_ways(models_for, data_for, **kw):
    """(packed results, unpacked results) for SEEDS."""
    cfgs = [cfg(seed=s, **kw) for s in SEEDS]
    packed = train_packed([models_for(s) for s in SEEDS], [data_for(s) for s in SEEDS], cfgs)
    alone = [train(models_for(s), data_for(s), c) for s, c in zip(SEEDS, cfgs, strict=True)]
    return packed, alone


def assert_twins(packed, alone):
    for p, a in zip(packed, alone, strict=True):
        assert (p.status, p.stopped_by, p.best_epoch) == (a.status, a.stopped_by, a.best_epoch)
        assert [r["epoch"] for r in p.history] == [r["epoch"] for r in a.history]
        for rp, ra in zip(p.history, a.history, strict=True):
            for key in ("train_loss", "val_loss", "val_accuracy"):
                if math.isnan(ra[key]):
                    assert math.isnan(rp[key]), key
                else:
                    assert rp[key] == pytest.approx(ra[key], rel=1e-3, abs=1e-4), key
        assert p.best_state.keys() == a.best_state.keys()
        for name in a.best_state:
            torch.testing.assert_close(
                p.best_state[name].float(), a.best_state[name].float(), **PACKED_TOLERANCE
            )


def test_packed_members_agree_with_their_unpacked_twins():
    shared = toy_data(n=200)
    packed, alone = both_ways(tiny_model, lambda s: noisy_data(s, shared), max_epochs=4)
    assert_twins(packed, alone)
    # the members really are different runs: different weights and histories
    w = [r.best_state["1.weight"] for r in packed]
    assert not torch.allclose(w[0], w[1]) and not torch.allclose(w[1], w[2])
    assert all(r.best_val_accuracy > 0.8 for r in packed)


@pytest.mark.parametrize("opt", ["adadelta", "adam"])
def test_every_optimizer_packs(opt):
    shared = toy_data(n=160)
    spec = {"adadelta": {"name": "adadelta", "lr": 1.0}, "adam": {"name": "adam", "lr": 0.01}}
    packed, alone = both_ways(
        tiny_model, lambda s: noisy_data(s, shared), optimizer=spec[opt], max_epochs=3
    )
    assert_twins(packed, alone)


def test_early_stopping_holds_per_member():
    """With patience 1 the members stop at different epochs; each stops where its twin does and
    keeps its own best epoch, while the others train on."""
    shared = toy_data(n=120)
    packed, alone = both_ways(
        tiny_model,
        lambda s: noisy_data(s, shared),
        optimizer={"name": "sgd", "lr": 0.5, "momentum": 0.9},
        max_epochs=12,
        patience=1,
    )
    assert_twins(packed, alone)
    lengths = {len(r.history) for r in packed}
    assert len(lengths) > 1, "the members should stop at different epochs for this test"
    assert {r.stopped_by for r in packed} >= {"patience"}


def test_batch_norm_models_pack():
    """Running statistics are per member (stacked buffers updated inside vmap)."""
    torch.manual_seed(0)
    images = torch.randn(96, 1, 28, 28)
    labels = torch.randint(0, 10, (96,))
    data = TrainData(images, torch.arange(96), labels, images[:32], labels[:32])
    packed, alone = both_ways(
        lambda s: seeded_model(lambda: build_model("mlp_bn", (1, 28, 28), 10), s),
        lambda s: data,
        optimizer={"name": "adam", "lr": 0.001},
        max_epochs=2,
    )
    assert_twins(packed, alone)
    means = [r.best_state["2.running_mean"] for r in packed]
    assert not torch.equal(means[0], means[1])


def test_a_killed_pack_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    shared = toy_data(n=160)
    cfgs = [cfg(seed=s, max_epochs=5) for s in SEEDS]
    datas = [noisy_data(s, shared) for s in SEEDS]
    full = train_packed([tiny_model(s) for s in SEEDS], datas, cfgs)

    ckpt = tmp_path / "pack.pt"
    calls = {"n": 0}
    real_epoch = packing._packed_epoch

    def dies_in_epoch_3(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # killed mid-epoch: epochs 1-2 are checkpointed
        return real_epoch(*args)

    monkeypatch.setattr(packing, "_packed_epoch", dies_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train_packed([tiny_model(s) for s in SEEDS], datas, cfgs, checkpoint=ckpt)
    monkeypatch.setattr(packing, "_packed_epoch", real_epoch)
    resumed = train_packed([tiny_model(s) for s in SEEDS], datas, cfgs, checkpoint=ckpt)
    for r, f in zip(resumed, full, strict=True):
        assert r.resumed_from_epoch == 2
        assert without_seconds(r.history) == without_seconds(f.history)
        for name in f.best_state:
            assert torch.equal(r.best_state[name], f.best_state[name]), name


def test_a_diverging_member_does_not_disturb_the_others():
    shared = toy_data(n=128)
    cfgs = [cfg(seed=s, max_epochs=3) for s in SEEDS]
    models = [tiny_model(s) for s in SEEDS]
    with torch.no_grad():
        models[1][1].weight.fill_(float("nan"))
    datas = [noisy_data(s, shared) for s in SEEDS]
    packed = train_packed(models, datas, cfgs)
    alone = [
        train(tiny_model(s), noisy_data(s, shared), c) for s, c in zip(SEEDS, cfgs, strict=True)
    ]
    assert packed[1].status == "diverged" and packed[1].stopped_by == "nonfinite_loss"
    assert_twins([packed[0], packed[2]], [alone[0], alone[2]])


def test_both_trainers_share_the_epoch_end_decision(monkeypatch):
    """One bookkeeping (corruptlab.train.core.RunRecord) decides for both trainers. With the last
    weights kept (restore_best False), early stopping still counts epochs since the best
    validation accuracy, not since the previous epoch's: 0.4 then 0.45 after 0.5 stop the run
    at epoch 2 with patience 2, and the result is that last epoch's."""
    from corruptlab.train import training

    script = [0.5, 0.4, 0.45, 0.42, 0.6]
    alone_acc, packed_acc = iter(script), iter(script)
    monkeypatch.setattr(training, "_validate", lambda model, data: (1.0, next(alone_acc)))

    def packed_validate(base, stack, data):
        acc = next(packed_acc)
        return [1.0] * len(stack.members), [acc] * len(stack.members)

    monkeypatch.setattr(packing, "_packed_validate", packed_validate)
    data = toy_data(n=64)
    cfgs = [cfg(seed=s, restore_best=False, patience=2, max_epochs=4) for s in SEEDS]
    alone = train(tiny_model(SEEDS[0]), data, cfgs[0])
    packed = train_packed([tiny_model(s) for s in SEEDS], [data] * len(SEEDS), cfgs)
    for result in [alone, *packed]:
        assert (result.status, result.stopped_by) == ("ok", "patience")
        assert (result.best_epoch, result.best_val_accuracy) == (2, 0.45)
        assert [r["val_accuracy"] for r in result.history] == script[:3]
    assert not torch.equal(packed[0].best_state["1.weight"], tiny_model(SEEDS[0])[1].weight)


@pytest.mark.parametrize("restore_best", [True, False])
def test_a_diverging_member_keeps_what_its_twin_keeps(restore_best):
    """Divergence is decided once for both trainers: the diverged epoch's row, status diverged,
    and the best weights (or, keeping the last weights, those of the diverged epoch)."""
    shared = toy_data(n=128)
    cfgs = [cfg(seed=s, max_epochs=3, restore_best=restore_best) for s in SEEDS]
    datas = [noisy_data(s, shared) for s in SEEDS]
    poisoned = datas[1].images.clone()
    poisoned[5, 0, 0, 0] = math.nan  # member 1's first epoch has a NaN loss
    datas[1] = TrainData(
        poisoned, datas[1].indices, datas[1].labels, shared.val_images, shared.val_labels
    )
    packed = train_packed([tiny_model(s) for s in SEEDS], datas, cfgs)
    alone = train(tiny_model(SEEDS[1]), datas[1], cfgs[1])
    for result in (packed[1], alone):
        assert (result.status, result.stopped_by, result.best_epoch) == (
            "diverged",
            "nonfinite_loss",
            1 if not restore_best else 0,
        )
        assert [r["epoch"] for r in result.history] == [0, 1]
        assert math.isnan(result.history[-1]["train_loss"])
        assert math.isnan(result.history[-1]["val_accuracy"])
        finite = all(torch.isfinite(v).all() for v in result.best_state.values())
        assert finite == restore_best


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda cfgs, models, datas: cfgs.__setitem__(1, cfg(seed=5, batch_size=16)),
            "differ in more than their seed",
        ),
        (
            lambda cfgs, models, datas: cfgs.__setitem__(1, cfg(seed=SEEDS[0])),
            "distinct seeds",
        ),
        (
            lambda cfgs, models, datas: datas.__setitem__(1, toy_data(n=100)),
            "training sets of one size",
        ),
        (
            lambda cfgs, models, datas: models.__setitem__(
                slice(None), [tiny_model(s, dropout=True) for s in SEEDS]
            ),
            "dropout",
        ),
    ],
)
def test_a_pack_that_cannot_be_trained_together_is_refused(change, message):
    shared = toy_data(n=128)
    cfgs = [cfg(seed=s) for s in SEEDS]
    models = [tiny_model(s) for s in SEEDS]
    datas = [noisy_data(s, shared) for s in SEEDS]
    change(cfgs, models, datas)
    with pytest.raises(ValueError, match=message):
        train_packed(models, datas, cfgs)


def test_the_stochastic_fact_names_exactly_the_models_with_dropout():
    with_dropout = {
        name
        for name in MODELS.names()
        if any(
            isinstance(m, nn.modules.dropout._DropoutNd)
            for m in build_model(name, (1, 28, 28), 10).modules()
        )
    }
    assert set(models_where(stochastic=True)) == with_dropout
    assert with_dropout == {
        "net", "net_notebook", "mlp_1200_dropout_jitter", "mlp_400_dropout_jitter"
    }  # fmt: skip


# --- the workflow: train.seeds_per_job -------------------------------------------------------

PACKED_STUDY = {
    "kind": "label_noise",
    "dataset": "mnist5k",
    "models": ["perceptron"],
    "noise": [{"kind": "none"}, {"kind": "uniform", "alpha": [1]}],
    "optimizers": [{"name": "adadelta", "lr": [1.0]}],
    "max_epochs": 3,
    "patience": 2,
    "seeds": 3,
}


@pytest.fixture(scope="module")
def packed_and_unpacked(tmp_path_factory):
    """The same study run with seeds packed two per job (one after another, and together with
    vmap) and with one job per run."""
    out = {}
    variants = {
        "sequential": {"seeds_per_job": 2},
        "vmap": {"seeds_per_job": 2, "packing": "vmap"},
        "unpacked": {},
    }
    for name, train_key in variants.items():
        wd = copy_workflow(tmp_path_factory.mktemp(name))
        study = {**PACKED_STUDY, **({"train": train_key} if train_key else {})}
        (wd / "study.yaml").write_text(yaml.safe_dump({"studies": {"twin": study}}))
        result = snakemake(wd, "--configfile", "study.yaml")
        out[name] = (wd, result.stdout)
    return out


def _run_files(wd):
    """Every file in the run directories but the job logs and benchmarks."""
    return sorted(
        p.relative_to(wd)
        for p in (wd / "results/twin/runs").rglob("seed*/*")
        if p.is_file() and not p.name.startswith(("train.", "evaluate."))
    )


def _record(wd, seed):
    path = f"results/twin/runs/perceptron/none/adadelta-lr1-wd0-bs128/seed{seed}/run.json"
    return json.loads((wd / path).read_text())


# the columns of the runs table that measure time, not results
TIMING = ["train_seconds", "job_seconds"]


@pytest.mark.e2e
@pytest.mark.parametrize("packing", ["sequential", "vmap"])
def test_packed_jobs_write_the_same_outputs_as_unpacked_ones(packed_and_unpacked, packing):
    (packed, log), (unpacked, _) = packed_and_unpacked[packing], packed_and_unpacked["unpacked"]
    jobs = planned_jobs(log)
    # 2 noise settings x seeds {0, 1} and {2}: 4 packed jobs instead of 6 runs, to train and
    # to evaluate
    for step in ("train", "evaluate"):
        assert jobs[f"{step}_seeds0_1"] == 2 and jobs[f"{step}_seeds2_2"] == 2, step
        assert step not in jobs
    assert _run_files(packed) == _run_files(unpacked)
    assert not list(packed.rglob("*checkpoint*.pt"))  # removed once the outputs exist
    record = _record(packed, 1)
    assert record["packed_with"] == [0, 1] and record["run"]["seed"] == 1
    assert record["packing"] == packing

    a = pd.read_parquet(packed / "results/twin/tables/runs.parquet")
    b = pd.read_parquet(unpacked / "results/twin/tables/runs.parquet")
    assert len(a) == len(b) == 6
    assert set(a["packing"]) == {packing} and set(b["packing"]) == {"none"}
    if packing == "sequential":  # each seed exactly as its own job trains and evaluates it
        same = [c for c in b.columns if c not in TIMING + ["packing"]]
        pd.testing.assert_frame_equal(a[same], b[same])
        return
    pd.testing.assert_frame_equal(a[["run_id", "best_epoch"]], b[["run_id", "best_epoch"]])
    for col in ("accuracy", "best_val_accuracy"):  # a 1,000-image test set: 0.001 per image
        assert (a[col] - b[col]).abs().max() <= 0.002, col
    for col in ("nll", "ece"):
        assert a[col].to_numpy() == pytest.approx(b[col].to_numpy(), rel=1e-3, abs=1e-4), col


@pytest.mark.e2e
def test_a_packed_study_reruns_nothing_and_validates_models(packed_and_unpacked, tmp_path):
    packed, _ = packed_and_unpacked["vmap"]
    assert planned_jobs(snakemake(packed, "--configfile", "study.yaml", "-n").stdout) == {}
    bad = {**PACKED_STUDY, "models": ["net"], "train": {"seeds_per_job": 4, "packing": "vmap"}}
    (packed / "bad.yaml").write_text(yaml.safe_dump({"studies": {"twin": bad}}))
    result = snakemake(packed, "--configfile", "bad.yaml", "-n", check=False)
    assert result.returncode != 0
    assert "studies.twin.train.packing: vmap with seeds_per_job 4, but net has dropout" in (
        result.stdout
    )
    # one after another, a model with dropout packs like any other
    fine = {**bad, "train": {"seeds_per_job": 4}}
    (packed / "fine.yaml").write_text(yaml.safe_dump({"studies": {"twin": fine}}))
    out = snakemake(packed, "--configfile", "fine.yaml", "-n").stdout
    jobs = planned_jobs(out)
    assert jobs["train_seeds0_2"] == 2 and jobs["evaluate_seeds0_2"] == 2
    # a pack's job may run for each of its runs: runtime 60 min per run x 3 seeds (SLURM --time)
    runtimes = set(
        re.findall(
            r"^rule (?:train|evaluate)_seeds0_2:\n(?:    .*\n)*?    resources: .*"
            r"runtime=(\d+)",
            out,
            flags=re.M,
        )
    )
    assert runtimes == {"180"}


# --- the workflow: decades of seeds and the automatic pack size --------------------------------

DECADES_STUDY = {
    **PACKED_STUDY,
    "noise": [{"kind": "none"}],
    "max_epochs": 1,
    "patience": 1,
    "seeds": 25,
    "train": {"seeds_per_job": 10},
}


@pytest.mark.e2e
def test_a_full_decade_of_seeds_is_one_job_of_the_decade_rule(tmp_path):
    """Seeds 0-9 and 10-19 go to the one rule that serves every decade (its files named by a
    {decade} wildcard, empty for 0-9); the incomplete 20-24 to a rule of its own, which the
    decade rule yields to."""
    wd = copy_workflow(tmp_path)
    (wd / "study.yaml").write_text(yaml.safe_dump({"studies": {"twin": DECADES_STUDY}}))
    jobs = planned_jobs(snakemake(wd, "--configfile", "study.yaml", "-n").stdout)
    for step in ("labels", "train", "evaluate"):
        packs = {rule: n for rule, n in jobs.items() if rule.startswith(f"{step}_")}
        assert packs == {f"{step}_decades": 2, f"{step}_seeds20_24": 1}
    snakemake(wd, "--configfile", "study.yaml")
    for seed, pack in [(3, range(10)), (15, range(10, 20)), (22, range(20, 25))]:
        record = _record(wd, seed)
        assert record["run"]["seed"] == seed and record["packed_with"] == list(pack)
    runs = pd.read_parquet(wd / "results/twin/tables/runs.parquet")
    assert sorted(runs["seed"].unique()) == list(range(25))
    assert (wd / "results/twin/labels/none/seed19.npz").exists()
    assert planned_jobs(snakemake(wd, "--configfile", "study.yaml", "-n").stdout) == {}

    # seed 15 of the decade job is bit for bit seed 15 run as a job of its own
    (tmp_path / "alone").mkdir()
    alone = copy_workflow(tmp_path / "alone")
    one = {**DECADES_STUDY, "seeds": [15], "train": {"seeds_per_job": 1}}
    (alone / "study.yaml").write_text(yaml.safe_dump({"studies": {"twin": one}}))
    snakemake(alone, "--configfile", "study.yaml")
    b = pd.read_parquet(alone / "results/twin/tables/runs.parquet")
    a = runs[runs["seed"] == 15].reset_index(drop=True)
    same = [c for c in b.columns if c not in TIMING + ["packing"]]
    assert len(b) > 0 and set(a["packing"]) == {"sequential"}
    pd.testing.assert_frame_equal(a[same], b[same], check_exact=True)


@pytest.mark.e2e
def test_a_study_of_2000_runs_packs_ten_seeds_per_job_by_default(tmp_path):
    wd = copy_workflow(tmp_path)
    study = {**PACKED_STUDY, "seeds": 1000}  # 2 noise settings x 1,000 seeds; no train key
    (wd / "study.yaml").write_text(yaml.safe_dump({"studies": {"sweep": study}}))
    out = snakemake(wd, "--configfile", "study.yaml", "-n").stdout
    jobs = planned_jobs(out)
    assert jobs["train_decades"] == jobs["evaluate_decades"] == 2 * 100
    assert set(jobs) == {"prepare", "labels_decades", "train_decades", "evaluate_decades"} | {
        "runs_table",
        "table",
        "figure",
        "study_page",
        "all",
    }
    # below 2,000 runs, one job per run, as before
    (wd / "small.yaml").write_text(yaml.safe_dump({"studies": {"sweep": {**study, "seeds": 999}}}))
    jobs = planned_jobs(snakemake(wd, "--configfile", "small.yaml", "-n").stdout)
    assert jobs["train"] == jobs["evaluate"] == 2 * 999
