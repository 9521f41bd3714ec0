"""OOD detection wired to trained runs: class subsets (held-out-class studies), ROC curves on
a grid, the per-run OOD job on real trained models, and the config checks of ood studies."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from corruptlab.core.config import ConfigError, expand_runs, validate_config
from corruptlab.data.datasets import (
    load_prepared,
    prepare,
    restrict_labels,
    save_prepared,
    select_classes,
)
from corruptlab.eval.ood import ROC_GRID, SCORES, load_ood_set, roc_points
from corruptlab.jobs.evaluate import evaluate_job
from corruptlab.jobs.labels import make_labels
from corruptlab.jobs.ood import ood_job
from corruptlab.jobs.testset import make_testset
from corruptlab.jobs.train import train_job
from corruptlab.studies import STUDIES

IN_CLASSES = [0, 1, 2, 3, 4]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("ood")
    path = root / "data.pt"
    save_prepared(prepare("mnist5k", split_seed=0), path)
    return root, path, load_prepared(path)


# ------------------------------------------------------------------------------ class subsets


def test_select_classes_keeps_renumbers_and_holds_out(base):
    _, _, data = base
    sub = select_classes(data, [5, 2, 0])  # any order; renumbered in ascending class order
    assert sub["n_classes"] == 3 and sub["classes"] == ["0", "2", "5"]
    assert sub["in_classes"] == [0, 2, 5]
    assert sub["content_hash"] == data["content_hash"]  # corrupted test sets still match
    for split in ("train", "val", "test"):
        labels = data[f"{split}_labels"]
        keep = (labels == 0) | (labels == 2) | (labels == 5)
        assert torch.equal(sub[f"{split}_images"], data[f"{split}_images"][keep])
        expected = torch.tensor([0, -1, 1, -1, -1, 2])[labels[keep]]
        assert torch.equal(sub[f"{split}_labels"].long(), expected)
    out = ~torch.isin(data["test_labels"], torch.tensor([0, 2, 5]))
    assert torch.equal(sub["held_out_images"], data["test_images"][out])
    assert set(sub["held_out_labels"].tolist()) == {1, 3, 4, 6, 7, 8, 9}
    assert len(sub["test_labels"]) + len(sub["held_out_labels"]) == len(data["test_labels"])


@pytest.mark.parametrize(
    ("classes", "match"),
    [
        ([], "at least one"),
        ([3, 10], r"distinct integers in 0\.\.9"),
        ([1, 1], "distinct"),
        (list(range(10)), "at least one must be held out"),
    ],
)
def test_select_classes_errors(base, classes, match):
    with pytest.raises(ValueError, match=match):
        select_classes(base[2], classes)


def test_restrict_labels_agrees_with_select_classes(base):
    _, _, data = base
    sub = select_classes(data, IN_CLASSES)
    images, labels = restrict_labels(data["test_images"], data["test_labels"], sub)
    assert torch.equal(images, sub["test_images"]) and torch.equal(labels, sub["test_labels"])
    same = restrict_labels(data["test_images"], data["test_labels"], data)  # every class
    assert same[0] is data["test_images"] and same[1] is data["test_labels"]


def test_load_prepared_with_in_classes(base):
    _, path, data = base
    sub = load_prepared(path, in_classes=IN_CLASSES)
    assert sub["n_classes"] == 5 and int(sub["train_labels"].max()) == 4
    assert len(sub["train_labels"]) == int((data["train_labels"] < 5).sum())


# -------------------------------------------------------------------------------- ROC on a grid


def test_roc_points_hand_computed():
    # thresholds 3, 2.5, 2, 1, 0 give (FPR, TPR) = (0, 1/3), (1/2, 1/3), (1/2, 2/3), (1/2, 1),
    # (1, 1); the curve at FPR <= g keeps the highest TPR
    tpr = roc_points([3.0, 2.0, 1.0], [2.5, 0.0], grid=[0.0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(tpr, [1 / 3, 1 / 3, 1.0, 1.0, 1.0])


def test_roc_points_default_grid_perfect_and_chance():
    perfect = roc_points([2.0, 3.0], [0.0, 1.0])
    assert perfect.shape == ROC_GRID.shape and (perfect == 1.0).all()
    same = roc_points([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0])
    assert (np.diff(same) >= 0).all()
    np.testing.assert_allclose(same[[0, 25, 50, 75, 100]], [0.0, 0.25, 0.5, 0.75, 1.0])


# --------------------------------------------------------------------------------- the OOD job


def _study(**extra) -> dict:
    study = {
        "kind": "ood",
        "dataset": "mnist5k",
        "models": ["mlp1"],
        "noise": [{"kind": "none"}],
        "optimizers": [{"name": "adadelta", "lr": 1.0}],
        "max_epochs": 2,
        "patience": 2,
        "seeds": 1,
        "ood": {"synthetic": ["uniform_noise"]},
        **extra,
    }
    return study


def _train(root, data_path, name: str, **extra) -> tuple[dict, dict]:
    config = validate_config({"device": "cpu", "studies": {name: _study(**extra)}})
    run = expand_runs(name, config["studies"][name], config)[0]
    labels = root / f"{name}-labels.npz"
    make_labels(str(data_path), run["noise"], name, 0, str(labels), run.get("in_classes"))
    out = {k: str(root / name / f) for k, f in [
        ("model", "model.pt"), ("history", "history.parquet"), ("run", "run.json")]}  # fmt: skip
    train_job([run], str(data_path), [str(labels)], [out])
    return config["studies"][name], out


@pytest.fixture(scope="module")
def trained(base):
    root, path, _ = base
    return {
        "all": _train(root, path, "all_classes"),
        "subset": _train(root, path, "subset", in_classes=IN_CLASSES),
    }


def test_ood_job_rows_and_roc(base, trained):
    root, path, data = base
    study, out = trained["all"]
    other = {"family": "dataset", "name": "mnist5k", "path": str(path)}
    sets = STUDIES.get("ood").ood_sets(study) + [other]
    rows = ood_job(out["run"], str(path), out["model"], sets, device="cpu")
    assert [(r["ood_set"], r["score"]) for r in rows] == [
        (s, score) for s in ("uniform_noise", "mnist5k") for score in SCORES.names()
    ]
    for r in rows:
        assert r["n_in"] == len(data["test_labels"]) == r["n_out"]
        assert len(r["roc_tpr"]) == len(ROC_GRID) and r["roc_fpr"] == ROC_GRID.tolist()
        assert (np.diff(r["roc_tpr"]) >= 0).all() and r["roc_tpr"][-1] == 1.0
        assert 0.0 <= r["fpr95"] <= 1.0 and 0.0 <= r["aupr_out"] <= 1.0
    # the in-distribution test set scored against itself: exactly chance
    for r in rows[len(SCORES) :]:
        assert r["auroc"] == pytest.approx(0.5, abs=1e-12), r
    # uniform noise is far from digits: a trained MLP's scores separate them
    assert all(r["auroc"] > 0.8 for r in rows[: len(SCORES)])
    ev, _ = evaluate_job(out["run"], str(path), out["model"], device="cpu")
    assert rows[0]["in_accuracy"] == pytest.approx(ev[0]["accuracy"])


def test_ood_job_on_held_out_classes_and_a_corrupted_test_set(base, trained):
    root, path, data = base
    study, out = trained["subset"]
    testset = root / "impulse_noise_s5.pt"
    make_testset(str(path), "impulse_noise", 5, str(testset))
    sets = [
        {"family": "held_out", "name": "held_out_classes"},
        {"family": "corruption", "name": "impulse_noise", "severity": 5, "path": str(testset)},
    ]
    assert STUDIES.get("ood").ood_sets(study)[-1] == sets[0]  # in_classes adds the held-out set
    rows = ood_job(out["run"], str(path), out["model"], sets, scores=["msp"], device="cpu")
    n_in = int((data["test_labels"] < 5).sum())
    assert [(r["ood_set"], r["n_in"], r["n_out"]) for r in rows] == [
        ("held_out_classes", n_in, len(data["test_labels"]) - n_in),
        ("impulse_noise_s5", n_in, n_in),  # the corrupted digits of the training classes
    ]
    ev, _ = evaluate_job(out["run"], str(path), out["model"], device="cpu")
    assert ev[0]["n"] == n_in and rows[0]["in_accuracy"] == pytest.approx(ev[0]["accuracy"])
    model = torch.load(out["model"], weights_only=True)
    assert model["n_classes"] == 5 and model["in_classes"] == IN_CLASSES


def test_load_ood_set_errors(base):
    _, _, data = base
    with pytest.raises(ValueError, match="needs a study trained on in_classes"):
        load_ood_set({"family": "held_out", "name": "held_out_classes"}, data)
    with pytest.raises(ValueError, match="unknown OOD set family 'web'; accepted: synthetic"):
        load_ood_set({"family": "web", "name": "x"}, data)


def test_synthetic_sets_are_the_same_for_every_run(base):
    _, _, data = base
    a = load_ood_set({"family": "synthetic", "name": "gaussian_noise"}, data)
    b = load_ood_set({"family": "synthetic", "name": "gaussian_noise"}, data)
    assert torch.equal(a, b) and a.shape == data["test_images"].shape


# ------------------------------------------------------------------------------------ config


def _errors(**study) -> str:
    config = {"studies": {"o": {**_study(), **study}}}
    with pytest.raises(ConfigError) as err:
        validate_config(copy.deepcopy(config))
    return str(err.value)


def test_ood_config_errors():
    msg = _errors(ood={"synthetic": ["pink_noise"], "datasets": ["mnist5k", "cifar"]})
    assert "studies.o.ood.synthetic[0]: unknown OOD set 'pink_noise'; accepted: " in msg
    assert "studies.o.ood.datasets[0]: 'mnist5k' is the study's own dataset" in msg
    assert "studies.o.ood.datasets[1]: unknown dataset 'cifar'" in msg
    msg = _errors(ood={"scores": ["odin"], "corruptions": ["rain"], "severity": 6})
    assert "studies.o.ood.scores[0]: unknown OOD score 'odin'; accepted: msp" in msg
    assert "studies.o.ood.corruptions[0]: unknown corruption 'rain'" in msg
    assert "studies.o.ood.severity" in msg
    assert "studies.o.in_classes: [10] are not classes of 'mnist5k'" in _errors(in_classes=[0, 10])
    assert "every class of 'mnist5k' is listed" in _errors(in_classes=list(range(10)))
    assert "an ood study needs at least one OOD set" in _errors(ood={})
    msg = _errors(kind="label_noise")
    assert "studies.o: unknown key(s) 'ood'; accepted: batch_size, dataset" in msg
    assert "('ood' is a key of study kinds 'ood' and 'no_gd')" in msg


def test_ood_config_defaults_and_runs():
    config = validate_config({"studies": {"o": _study(in_classes=[3, 1])}})
    study = config["studies"]["o"]
    assert study["ood"]["scores"] == ["msp", "entropy", "energy", "max_logit"]
    assert study["ood"]["severity"] == 5
    run = expand_runs("o", study, config)[0]
    assert run["in_classes"] == [1, 3]
    plain = validate_config({"studies": {"o": _study()}})
    assert "in_classes" not in expand_runs("o", plain["studies"]["o"], plain)[0]
