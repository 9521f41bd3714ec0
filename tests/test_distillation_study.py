"""The distillation study kind (issue 17): run expansion (teachers -> soft targets -> students,
the pairing by noise, run ids and inputs), config errors, transfer sets, the bias shift chosen
on validation, soft targets reaching the trainer, and one tiny study end to end through the
snakemake CLI, with the rerun a teacher's change causes (only it and its students)."""

from __future__ import annotations

import copy
import math
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from conftest import copy_workflow, planned_jobs, snakemake  # noqa: E402

from corruptlab.core.config import ConfigError, expand_runs, validate_config  # noqa: E402
from corruptlab.data.noise import NoisyLabels  # noqa: E402
from corruptlab.data.transfer import shifted_classes, transfer_mask, unseen_classes  # noqa: E402
from corruptlab.eval.bias_shift import choose_shift, shift_logits  # noqa: E402
from corruptlab.jobs.train import transfer_set  # noqa: E402
from corruptlab.report.claims import VERDICTS  # noqa: E402
from corruptlab.studies import STUDIES  # noqa: E402
from corruptlab.studies.distillation import figures as distillation_figures  # noqa: E402
from corruptlab.studies.distillation import tables as distillation_tables  # noqa: E402

STUDY = {
    "kind": "distillation",
    "dataset": "mnist5k",
    "models": ["mlp1"],
    "noise": [{"kind": "none"}],
    "optimizers": [{"name": "adam", "lr": 0.001}],
    "max_epochs": 2,
    "patience": 2,
    "seeds": 2,
    "train": {"seeds_per_job": 2},
    "teachers": [
        {"models": ["mlp_400_dropout_jitter"], "noise": [{"kind": "none"}], "max_epochs": 2},
        {"models": ["mlp2"], "noise": [{"kind": "flip", "p": 0.3}], "max_epochs": 2},
    ],
    "distillation": {"temperature": [2, 8], "alpha": 0.5},
    "transfer_sets": [
        {"name": "all"},
        {"name": "all", "noise": [{"kind": "flip", "p": 0.3}], "temperature": 4},
        {"name": "no3", "omit": [3], "temperature": 4},
        {"name": "only78", "keep": [7, 8], "temperature": 4},
    ],
}
TEACHER_CLEAN = "teacher/mlp_400_dropout_jitter/none/adam-lr0.001-wd0-bs128"
TEACHER_NOISY = "teacher/mlp2/flip-p0.3/adam-lr0.001-wd0-bs128"


def config_of(study: dict) -> dict:
    config = {"studies": {"d": copy.deepcopy(study)}}
    validate_config(config)
    return config


def runs_of(study: dict = STUDY) -> list[dict]:
    config = config_of(study)
    return expand_runs("d", config["studies"]["d"], config)


def test_the_kind_is_registered_with_soft_targets():
    kind = STUDIES.get("distillation")
    assert kind.soft_targets
    assert kind.table_names == ("runs", "errors", "summary", "claims")


def test_teachers_then_students_paired_by_noise_with_their_inputs():
    runs = runs_of()
    ids = [r["run_id"] for r in runs]
    assert len(ids) == len(set(ids))
    teachers = [r for r in runs if r["columns"]["role"] == "teacher"]
    assert [r["run_id"] for r in teachers] == [
        f"{TEACHER_CLEAN}/seed0",
        f"{TEACHER_CLEAN}/seed1",
        f"{TEACHER_NOISY}/seed0",
        f"{TEACHER_NOISY}/seed1",
    ]
    assert all("inputs" not in r and "objective" not in r for r in teachers)
    students = [r for r in runs if r["columns"]["role"] == "student"]
    configs = sorted({r["run_id"].rsplit("/seed", 1)[0] for r in students})
    tag = "from-mlp_400_dropout_jitter+none+adam-lr0.001-wd0-bs128"
    noisy_tag = "from-mlp2+flip-p0.3+adam-lr0.001-wd0-bs128"
    assert configs == sorted(
        [
            "student/mlp1/none/all/hard/adam-lr0.001-wd0-bs128",
            f"student/mlp1/none/all/{tag}/adam-lr0.001-wd0-kd-t2-a0.5-bs128",
            f"student/mlp1/none/all/{tag}/adam-lr0.001-wd0-kd-t8-a0.5-bs128",
            "student/mlp1/flip-p0.3/all/hard/adam-lr0.001-wd0-bs128",
            f"student/mlp1/flip-p0.3/all/{noisy_tag}/adam-lr0.001-wd0-kd-t4-a0.5-bs128",
            "student/mlp1/none/no3/hard/adam-lr0.001-wd0-bs128",
            f"student/mlp1/none/no3/{tag}/adam-lr0.001-wd0-kd-t4-a0.5-bs128",
            "student/mlp1/none/only78/hard/adam-lr0.001-wd0-bs128",
            f"student/mlp1/none/only78/{tag}/adam-lr0.001-wd0-kd-t4-a0.5-bs128",
        ]
    )
    for r in students:
        seed = r["seed"]
        if "/hard/" in r["run_id"]:
            assert "inputs" not in r and "objective" not in r
            assert r["columns"]["teacher_run_id"] is None
            continue
        teacher = TEACHER_NOISY if r["noise"]["kind"] == "flip" else TEACHER_CLEAN
        # student seed k learns from teacher seed k's logits, named as a run input
        assert r["inputs"] == {"teacher": f"{teacher}/seed{seed}/train_logits.npy"}
        assert r["columns"]["teacher_run_id"] == f"{teacher}/seed{seed}"
        assert r["objective"]["name"] == "distillation"
        assert r["objective"]["temperature"] == r["columns"]["kd_temperature"]
    no3 = [r for r in students if r["columns"]["transfer_set"] == "no3"]
    assert all(r["transfer"] == {"name": "no3", "omit": [3]} for r in no3) and len(no3) == 4


def test_any_teacher_noise_pairs_every_teacher_with_every_transfer_set():
    study = copy.deepcopy(STUDY)
    study["distillation"]["teacher_noise"] = "any"
    study["distillation"]["hard_labels"] = False
    study["transfer_sets"] = [{"name": "all", "temperature": 4}]
    students = [r for r in runs_of(study) if r["columns"]["role"] == "student"]
    assert sorted({r["columns"]["teacher_model"] for r in students}) == [
        "mlp2",
        "mlp_400_dropout_jitter",
    ]
    assert len(students) == 2 * 2  # two teachers x two seeds, no hard-label student


def test_every_student_gets_the_full_set_step_budget_and_those_lacking_classes_no_early_stop():
    """The run dicts carry how long a student trains (jobs.train.training_length): a student
    whose transfer set lacks classes gets the ``full_set`` step budget without early stopping;
    teachers and students on every class keep their run dicts as before (no key), so their
    jobs do not change; an integer ``student_steps`` reaches every student."""
    runs = runs_of()
    length = {
        r["run_id"]: {k: r[k] for k in ("step_budget", "early_stopping") if k in r} for r in runs
    }
    for r in runs:
        lacks = r["columns"]["transfer_set"] in ("no3", "only78")
        assert length[r["run_id"]] == (
            {"step_budget": "full_set", "early_stopping": False} if lacks else {}
        ), r["run_id"]
        assert r["max_epochs"] == 2 and r["patience"] == 2
    study = copy.deepcopy(STUDY)
    study["student_steps"] = 100
    budgeted = runs_of(study)
    assert [r["run_id"] for r in budgeted] == [r["run_id"] for r in runs]  # the same paths
    for r in budgeted:
        if r["columns"]["role"] == "teacher":
            assert "step_budget" not in r and "early_stopping" not in r
        else:
            assert r["step_budget"] == 100
            assert ("early_stopping" in r) == (r["columns"]["transfer_set"] != "all")


@pytest.mark.parametrize(
    ("keys", "n_own", "expected"),
    [
        # mnist5k: 3,500 training images, 350 per class; batch 128: 28 steps per pass
        ({}, 700, {"max_epochs": 6, "patience": 4, "restore_best": True}),
        (  # only 7s and 8s: 6 steps per pass, 28 passes = the full set's 6 x 28 steps
            {"step_budget": "full_set", "early_stopping": False},
            700,
            {"max_epochs": 28, "patience": 28, "restore_best": False, "step_budget": 168},
        ),
        (  # without the 3s: 25 steps per pass, 7 passes (175 steps: whole epochs, rounded up)
            {"step_budget": "full_set", "early_stopping": False},
            3150,
            {"max_epochs": 7, "patience": 7, "restore_best": False, "step_budget": 168},
        ),
        (  # the whole set under the full_set budget: as without one
            {"step_budget": "full_set"},
            3500,
            {"max_epochs": 6, "patience": 4, "restore_best": True, "step_budget": 168},
        ),
        (  # an explicit budget: 100 steps; the whole set: 4 passes (112 steps)
            {"step_budget": 100},
            3500,
            {"max_epochs": 4, "patience": 4, "restore_best": True, "step_budget": 100},
        ),
    ],
)
def test_the_step_budget_sets_each_students_epochs(keys, n_own, expected):
    from corruptlab.jobs.train import training_length

    run = {"run_id": "s/seed0", "batch_size": 128, "max_epochs": 6, "patience": 4, **keys}
    got = training_length(run, 3500, n_own)
    per_epoch = math.ceil(n_own / 128)
    assert {k: v for k, v in got.items() if k != "steps_per_epoch"} == expected
    if "step_budget" in keys:
        assert got["steps_per_epoch"] == per_epoch
        steps = got["max_epochs"] * per_epoch
        assert got["step_budget"] <= steps < got["step_budget"] + per_epoch


def test_a_bad_step_budget_in_a_run_dict_names_the_key():
    from corruptlab.jobs.train import training_length

    run = {"run_id": "s/seed0", "batch_size": 128, "max_epochs": 6, "patience": 4}
    with pytest.raises(ValueError, match=r"s/seed0: step_budget 'all'; accepted: 'full_set' or"):
        training_length({**run, "step_budget": "all"}, 3500, 700)
    with pytest.raises(ValueError, match=r"early_stopping 'no'; accepted: true or false"):
        training_length({**run, "early_stopping": "no"}, 3500, 700)


def test_students_on_7s_and_8s_and_on_every_class_take_the_same_optimizer_steps(tmp_path):
    """Trained by the train job on mnist5k: the hard-label student on all 3,500 images and the
    one on the 700 7s and 8s take the same number of optimizer steps (2 passes of 28 batches
    against 10 passes of 6 batches: 56 and 60), the latter every one of them (no early
    stopping, its last weights kept) although its patience is 1."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    from corruptlab.data.datasets import prepare, save_prepared
    from corruptlab.jobs.labels import make_labels
    from corruptlab.jobs.train import train_job

    data = tmp_path / "data.pt"
    save_prepared(prepare("mnist5k", split_seed=0), data)
    study = {
        **copy.deepcopy(STUDY),
        "teachers": [{"models": ["mlp1"]}],
        "patience": 1,
        "seeds": 1,
        "train": {"seeds_per_job": 1},
        "transfer_sets": [{"name": "all"}, {"name": "only78", "keep": [7, 8], "temperature": 4}],
    }
    config = config_of(study)
    config["device"] = "cpu"
    runs = {
        r["columns"]["transfer_set"]: r
        for r in expand_runs("d", config["studies"]["d"], config)
        if "/hard/" in r["run_id"]
    }
    labels = tmp_path / "labels.npz"
    make_labels(str(data), {"kind": "none"}, "d", 0, str(labels))
    steps = {}

    def count(optimizer, args, kwargs):
        steps[current] = steps.get(current, 0) + 1

    hook = register_optimizer_step_post_hook(count)
    records = {}
    try:
        for current, run in runs.items():
            out = {k: str(tmp_path / current / f"{k}.out") for k in ("model", "history", "run")}
            records[current] = train_job([run], str(data), [str(labels)], [out])[0]
    finally:
        hook.remove()
    assert steps == {"all": 2 * 28, "only78": 10 * 6}
    assert records["all"]["n_train_examples"] == 3500 and "training_length" not in records["all"]
    only = records["only78"]
    assert only["n_train_examples"] == 700 and only["epochs_trained"] == 10
    assert only["stopped_by"] == "max_epochs" and only["best_epoch"] == 10
    assert only["training_length"] == {
        "max_epochs": 10,
        "patience": 10,
        "restore_best": False,
        "step_budget": 56,
        "steps_per_epoch": 6,
    }


def test_bias_shift_conditions_one_per_transfer_set_that_lacks_classes():
    config = config_of(STUDY)
    conditions = STUDIES.get("distillation").eval_conditions(config["studies"]["d"])
    assert conditions == [
        {"name": "shift_no3", "severity": 0, "family": "bias_shift", "classes": [3]},
        {"name": "shift_only78", "severity": 0, "family": "bias_shift", "classes": [7, 8]},
    ]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda s: s["teachers"][0].update(noise=[{"kind": "randx", "p": 0.5}]),
            "studies.d.teachers[0].noise[0].kind: randx adds synthetic images, which have no "
            "teacher logits nor classes; accepted: none, uniform, structured, flip",
        ),
        (
            lambda s: s["transfer_sets"][2].update(keep=[1]),
            "studies.d.transfer_sets[2]: omit and keep both set; accepted: one of them, or neither",
        ),
        (
            lambda s: s.update(objective={"name": "distillation", "temperature": 2, "alpha": 1}),
            "studies.d.objective: a distillation study sets its students' loss itself (keys "
            "distillation.temperature and distillation.alpha); accepted: no objective key",
        ),
        (
            lambda s: s["teachers"][1].update(models=["resnet"]),
            "studies.d.teachers[1].models[0]: unknown model 'resnet'; accepted: perceptron,",
        ),
        (
            lambda s: s["distillation"].update(alpha=[0.5, 1.5]),
            "studies.d.distillation.alpha: got 1.5; accepted: a number in [0, 1]",
        ),
        (
            lambda s: s["transfer_sets"].append({"name": "no3", "omit": [4]}),
            "studies.d.transfer_sets[4]: transfer set 'no3' with noise none is also "
            "transfer_sets[2]; accepted: distinct (name, noise) pairs",
        ),
        (
            lambda s: s.pop("teachers"),
            "studies.d.teachers: missing; accepted: a non-empty list of teacher entries",
        ),
        (
            lambda s: s.update(in_classes=[0, 1, 2]),
            "studies.d.in_classes: a distillation study trains and tests on every class",
        ),
        (
            lambda s: s.update(max_epochs=[2, 4]),
            "studies.d.max_epochs: got a list; accepted: one integer in a distillation study",
        ),
        (
            lambda s: s.update(optimizers=[{"name": "adam", "lr": [0.001, 0.01]}]),
            "studies.d.optimizers: 2 settings for the students (adam-lr0.001-wd0, "
            "adam-lr0.01-wd0), but the claims pair each distilled student with the hard-label "
            "student of its model and labels, which would pair across settings; accepted: one "
            "optimizer setting (one name and lr) for the students (teachers may set their own)",
        ),
        (
            lambda s: s.update(student_steps="epochs"),
            "studies.d.student_steps: got 'epochs'; accepted: 'full_set' or an integer >= 1",
        ),
        (
            lambda s: s["optimizers"][0].update(schedule={"name": "step", "gamma": 0.7}),
            "studies.d.optimizers[0].schedule: step multiplies the students' lr by gamma after "
            "every pass over their transfer set",
        ),
        (
            lambda s: s["train"].update(packing="vmap"),
            "studies.d.train.packing: vmap cannot train teacher 'mlp_400_dropout_jitter' (it has "
            "dropout); accepted: packing sequential",
        ),
    ],
)
def test_a_bad_study_names_the_key_and_what_is_accepted(edit, message):
    study = copy.deepcopy(STUDY)
    edit(study)
    with pytest.raises(ConfigError) as err:
        config_of(study)
    assert message in str(err.value)


def test_transfer_sets_by_true_class():
    labels = np.array([0, 3, 7, 8, 3, 9])
    assert transfer_mask(labels, None).all()
    assert transfer_mask(labels, {"name": "all"}).all()
    assert transfer_mask(labels, {"name": "no3", "omit": [3]}).tolist() == [1, 0, 1, 1, 0, 1]
    assert transfer_mask(labels, {"name": "o", "keep": [7, 8]}).tolist() == [0, 0, 1, 1, 0, 0]
    assert unseen_classes({"name": "o", "keep": [7, 8]}, 10) == [0, 1, 2, 3, 4, 5, 6, 9]
    assert unseen_classes({"name": "no3", "omit": [3]}, 10) == [3]
    assert shifted_classes({"name": "o", "keep": [8, 7]}) == [7, 8]
    assert shifted_classes({"name": "all"}) == []


def test_the_bias_shift_is_the_one_best_on_the_given_split():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 400)
    logits = rng.normal(size=(400, 4))
    logits[np.arange(400), labels] += 3.0
    logits[:, 2] -= 8.0  # class 2 is never predicted, as for a student that never saw it
    assert (logits.argmax(1) == 2).sum() == 0
    delta = choose_shift(logits, labels, [2])
    assert 5.0 <= delta <= 10.0
    shifted = shift_logits(logits, [2], delta)
    assert (shifted.argmax(1) == labels).mean() > (logits.argmax(1) == labels).mean() + 0.15
    assert shifted[:, [0, 1, 3]].tolist() == logits[:, [0, 1, 3]].tolist()
    assert choose_shift(logits, labels, []) == 0.0
    # ties: the shift closest to zero
    assert choose_shift(np.eye(3), np.arange(3), [1]) == 0.0


def test_soft_targets_follow_the_examples_of_the_transfer_set(tmp_path, monkeypatch):
    true = np.array([0, 1, 2, 3, 3, 4])
    noisy = NoisyLabels(
        indices=np.array([0, 1, 2, 3, 4, 5, 3]),  # the last: a noisy copy of image 3
        labels=np.array([0, 1, 2, 3, 3, 4, 9]),
        noisy=np.array([0, 0, 0, 0, 0, 0, 1], bool),
    )
    logits = np.arange(6 * 10, dtype=np.float32).reshape(6, 10)
    path = tmp_path / "results/d/runs/t/seed0"
    path.mkdir(parents=True)
    np.save(path / "train_logits.npy", logits)
    run = {
        "study": "d",
        "run_id": "s/seed0",
        "transfer": {"name": "no3", "omit": [3]},
        "inputs": {"teacher": "t/seed0/train_logits.npy"},
    }
    monkeypatch.chdir(tmp_path)  # run inputs are paths relative to the workflow's directory
    indices, labels, soft = transfer_set(run, noisy, true)
    hard = transfer_set({**run, "inputs": {}}, noisy, true)
    with pytest.raises(ValueError, match="transfer set 'none' is empty"):
        transfer_set({**run, "transfer": {"name": "none", "keep": [7]}}, noisy, true)
    assert indices.tolist() == [0, 1, 2, 5]
    assert labels.tolist() == [0, 1, 2, 4]
    assert soft.dtype == np.float32 and soft.tolist() == logits[[0, 1, 2, 5]].tolist()
    assert hard[2] is None and hard[0].tolist() == [0, 1, 2, 5]


# --- one tiny study end to end ------------------------------------------------------------------

TINY = {
    "kind": "distillation",
    "dataset": "mnist5k",
    "models": ["mlp1"],
    "noise": [{"kind": "none"}],
    "optimizers": [{"name": "adam", "lr": 0.001}],
    "max_epochs": 2,
    "patience": 2,
    "seeds": 2,
    "train": {"seeds_per_job": 2},
    "teachers": [
        {"models": ["mlp_400_dropout_jitter"], "max_epochs": 2},
        {"models": ["mlp2"], "noise": [{"kind": "flip", "p": 0.3}], "max_epochs": 2},
    ],
    "distillation": {"temperature": [2, 8], "alpha": 0.5},
    "transfer_sets": [
        {"name": "all"},
        {"name": "all", "noise": [{"kind": "flip", "p": 0.3}], "temperature": 4},
        {"name": "no3", "omit": [3], "temperature": 4},
    ],
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    wd = copy_workflow(tmp_path_factory.mktemp("distillation"))
    (wd / "d.yaml").write_text(yaml.safe_dump({"studies": {"d": TINY}}))
    result = snakemake(wd, "--configfile", "d.yaml")
    return wd, result.stdout


def _trained_configs(dry_run: str) -> set[str]:
    """The configurations a dry run would train (from its train jobs' model.pt outputs)."""
    return set(re.findall(r"output: results/d/runs/(\S+?)/seed0/model\.pt", dry_run))


@pytest.mark.e2e
def test_a_distillation_study_runs_end_to_end(tiny_run):
    wd, log = tiny_run
    jobs = planned_jobs(log)
    assert jobs["soft_targets_seeds0_1"] == 2  # one job per teacher configuration
    assert jobs["train_seeds0_1"] == 2 + 7  # teachers; students: 3 + 2 on all, 2 on no3
    for teacher in (TEACHER_CLEAN, "teacher/mlp2/flip-p0.3/adam-lr0.001-wd0-bs128"):
        for seed in (0, 1):
            logits = np.load(wd / f"results/d/runs/{teacher}/seed{seed}/train_logits.npy")
            assert logits.shape == (3500, 10) and logits.dtype == np.float32
    tables = wd / "results/d/tables"
    errors = pd.read_parquet(tables / "errors.parquet")
    no3 = errors[(errors["transfer_set"] == "no3") & (errors["class"] == "all")]
    assert sorted(no3.groupby("stage").size().items()) == [("after", 4), ("before", 4)]
    assert set(no3["shifted_classes"]) == {"3"}
    distilled = errors[errors["objective"] != "cross_entropy"]
    assert (distilled["teacher_run_id"].str.startswith("teacher/")).all()
    assert (distilled["teacher_run_id"].str[-5:] == distilled["run_id"].str[-5:]).all()
    overall = errors[(errors["class"] == "all")]
    assert set(overall["n"]) == {1000}
    per_class = errors[(errors["class"] != "all") & (errors["stage"] == "before")]
    assert per_class.groupby("run_id")["n"].sum().eq(1000).all()
    for column in ("corruptlab_version", "git_commit", "torch_version", "device"):
        assert column in errors
    hard3 = errors[
        (errors["transfer_set"] == "no3")
        & (errors["objective"] == "cross_entropy")
        & (errors["class"] == "3")
        & (errors["stage"] == "before")
    ]
    assert len(hard3) == 2 and (hard3["accuracy"] == 0).all()  # never saw a 3, never says 3
    claims = pd.read_parquet(tables / "claims.parquet")
    sanity = claims[claims["claim"] == "the teacher learns (sanity)"]
    assert len(sanity) == 2
    assert claims.iloc[0]["claim"] == "the teacher learns (sanity)"
    assert set(claims["verdict"]) <= set(VERDICTS)
    mythical = claims[claims["claim"].str.contains("hard-label student never gets it right")]
    assert list(mythical["verdict"]) == ["supported"]
    summary = pd.read_parquet(tables / "summary.parquet")
    assert set(summary["n"]) == {2}
    drawn = {p.stem for p in (wd / "results/d/figures").glob("*.png")}
    assert drawn == {"errors_vs_temperature", "unseen_class_accuracy", "noisy_teachers"}
    assert planned_jobs(snakemake(wd, "-n", "--configfile", "d.yaml").stdout) == {}


@pytest.mark.e2e
def test_changing_a_teacher_retrains_it_and_its_students_only(tiny_run):
    wd, _ = tiny_run
    changed = copy.deepcopy(TINY)
    changed["teachers"][0]["max_epochs"] = 3  # the clean teacher
    (wd / "d2.yaml").write_text(yaml.safe_dump({"studies": {"d": changed}}))
    out = snakemake(wd, "-n", "--configfile", "d2.yaml").stdout
    jobs = planned_jobs(out)
    assert jobs["soft_targets_seeds0_1"] == 1
    tag = "from-mlp_400_dropout_jitter+none+adam-lr0.001-wd0-bs128"
    assert _trained_configs(out) == {
        TEACHER_CLEAN,
        f"student/mlp1/none/all/{tag}/adam-lr0.001-wd0-kd-t2-a0.5-bs128",
        f"student/mlp1/none/all/{tag}/adam-lr0.001-wd0-kd-t8-a0.5-bs128",
        f"student/mlp1/none/no3/{tag}/adam-lr0.001-wd0-kd-t4-a0.5-bs128",
    }
    # the other teacher, its student and the hard-label students stay as they are
    assert jobs["train_seeds0_1"] == 4
    assert jobs["evaluate_seeds0_1"] == 4
    assert re.findall(r"output: results/d/runs/(\S+?)/seed0/train_logits\.npy", out) == [
        TEACHER_CLEAN
    ]


def test_a_teacher_trains_to_the_same_weights_twice():
    """Dropout and jitter draw from generators seeded per (run seed, epoch): a teacher retrained
    on the CPU has bit-identical weights, so its soft targets (and its students) are too."""
    from corruptlab.train.models import build_model
    from corruptlab.train.training import TrainConfig, TrainData, seeded_model, train

    g = torch.Generator().manual_seed(0)
    images = torch.randn(64, 1, 28, 28, generator=g)
    labels = torch.randint(0, 10, (64,), generator=g)
    cfg = TrainConfig(
        optimizer={"name": "adam", "lr": 0.001},
        batch_size=16,
        max_epochs=2,
        patience=2,
        seed=3,
        restore_best=False,
    )
    states = []
    for _ in range(2):
        model = seeded_model(lambda: build_model("mlp_400_dropout_jitter", (1, 28, 28), 10), 7)
        data = TrainData(images, torch.arange(64), labels, images[:16], labels[:16])
        states.append(train(model, data, cfg).best_state)  # the last epoch's (restore_best off)
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_the_model_input_of_a_teacher_reaches_the_student_trainer():
    """A distilled student's TrainData carries its teacher's logits for its examples."""
    from corruptlab.train.training import TrainConfig, TrainData, train

    torch.manual_seed(0)
    images = torch.randn(40, 1, 4, 4)
    labels = torch.randint(0, 3, (40,))
    soft = torch.randn(40, 3) * 5
    data = TrainData(images, torch.arange(40), labels, images[:10], labels[:10], soft)
    cfg = TrainConfig(
        optimizer={"name": "sgd", "lr": 0.1},
        max_epochs=1,
        patience=1,
        objective={"name": "distillation", "temperature": 2.0, "alpha": 1.0},
    )
    from torch import nn

    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    result = train(model, data, cfg)
    assert result.history[-1]["epoch"] == 1
    with pytest.raises(ValueError, match="trains on soft targets"):
        train(model, TrainData(images, torch.arange(40), labels, images, labels), cfg)


@pytest.mark.e2e
def test_the_full_distillation_study_plans_the_papers_grid(tmp_path):
    """config/studies/distillation.yaml (full MNIST: a download, hours of CPU) is planned: the
    paper's T x alpha grid on three transfer sets, and the noisy teachers' students."""
    wd = copy_workflow(tmp_path)
    args = ["-n", "--configfile", "config/studies/distillation.yaml"]
    jobs = planned_jobs(snakemake(wd, *args).stdout)
    teachers = 1 + 2 + 2  # clean; uniform alpha 1, 5; flip p 0.2, 0.5
    students = 3 * (1 + 5 * 2) + 4 * (1 + 2 * 2)  # 3 clean sets: hard + T x alpha; 4 noisy
    assert jobs["train"] == 3 * (teachers + students) == jobs["evaluate"]
    assert jobs["soft_targets"] == 3 * teachers
    config = yaml.safe_load((wd / "config/studies/distillation.yaml").read_text())
    study = config["studies"]["distillation"]
    assert study["distillation"]["temperature"] == [1, 2, 4, 8, 20]
    assert study["distillation"]["alpha"] == [1.0, 0.5]
    assert study["dataset"] == "mnist" and study["models"] == ["mlp_800"]
    assert study["teachers"][0]["models"] == ["mlp_1200_dropout_jitter"]


# --- tables and claims on synthetic runs --------------------------------------------------------

NO3 = {**STUDY, "transfer_sets": [{"name": "no3", "omit": [3], "temperature": 4}]}
T_CONFIG = "teacher/m/none/adam-lr0.001-wd0-bs128"
HARD = "student/s/none/no3/hard/adam-lr0.001-wd0-bs128"
SOFT = "student/s/none/no3/from-m+none+adam-lr0.001-wd0-bs128/adam-lr0.001-wd0-kd-t4-a0.5-bs128"
LABELS = np.repeat(np.arange(10), 10)  # 100 test images, 10 per class


def _predictions(run_id: str, condition: str, right: dict[int, int]) -> pd.DataFrame:
    """Per-example rows: of each class's 10 images, ``right[class]`` (default 9) correct."""
    correct = np.concatenate([np.arange(10) < right.get(c, 9) for c in range(10)])
    n = len(LABELS)
    return pd.DataFrame(
        {"run_id": [run_id] * n, "condition": [condition] * n, "label": LABELS, "correct": correct}
    )


def _run_rows(run_id: str, seed: int, role: str, soft: bool, transfer: str, shift: tuple) -> list:
    """A synthetic run's two rows of the runs table (clean, and ``shift`` = (condition, bias
    shift)): a teacher (model m, every class) or a student (model s, ``transfer``), distilled
    from the teacher of its seed at T = 4, alpha = 0.5 when ``soft``."""
    base = {
        "run_id": run_id,
        "seed": seed,
        "model": "m" if role == "teacher" else "s",
        "role": role,
        "transfer_set": "all" if role == "teacher" else transfer,
        "teacher_run_id": f"{T_CONFIG}/seed{seed}" if soft else None,
        "teacher_model": "m" if soft else None,
        "teacher_noise": "none" if soft else None,
        "kd_temperature": 4.0 if soft else np.nan,
        "kd_alpha": 0.5 if soft else np.nan,
        "objective": "kd-t4-a0.5" if soft else None,
        "git_commit": "abc",
        "study": "d",
    }
    condition, bias = shift
    return [
        {**base, "condition": "clean", "bias_shift": np.nan},
        {**base, "condition": condition, "bias_shift": bias},
    ]


def _synthetic(after_on_3: int) -> dict[str, pd.DataFrame]:
    """A teacher, a hard-label student and a distilled student without 3s, two seeds each: the
    distilled one gets 4 of 10 test 3s before the shift and ``after_on_3`` after it; the hard
    one none."""
    runs, preds = [], []
    for seed in (0, 1):
        for config, role, right_before, right_after in (
            (T_CONFIG, "teacher", {}, None),
            (HARD, "student", {3: 0}, {3: 0}),
            (SOFT, "student", {3: 4}, {3: after_on_3}),
        ):
            run_id = f"{config}/seed{seed}"
            soft = config == SOFT
            runs += _run_rows(run_id, seed, role, soft, "no3", ("shift_no3", 2.5))
            preds.append(_predictions(run_id, "clean", right_before))
            preds.append(_predictions(run_id, "shift_no3", right_after or right_before))
    return {"runs": pd.DataFrame(runs), "predictions": pd.concat(preds, ignore_index=True)}


def _claims(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    from corruptlab.report.claims import check_claims

    study = config_of(NO3)["studies"]["d"]
    tables = {**tables, "errors": distillation_tables.errors(tables, study)}
    return check_claims("distillation", tables, study)


def test_the_errors_table_counts_per_class_before_and_after_the_shift():
    tables = _synthetic(after_on_3=9)
    study = config_of(NO3)["studies"]["d"]
    e = distillation_tables.errors(tables, study)
    soft = e[e["run_id"] == f"{SOFT}/seed0"].set_index(["stage", "class"])
    assert soft.loc[("before", "3"), "errors"] == 6 and soft.loc[("after", "3"), "errors"] == 1
    assert soft.loc[("before", "all"), "errors"] == 6 + 9  # 9 other classes, one error each
    assert soft.loc[("before", "all"), "n"] == 100
    assert soft.loc[("after", "3"), "bias_shift"] == 2.5
    assert set(soft["teacher_run_id"]) == {f"{T_CONFIG}/seed0"}
    teacher = e[e["role"] == "teacher"]
    assert set(teacher["stage"]) == {"before"}  # a teacher saw every class: no shift
    summary = distillation_tables.summary({"errors": e}, study)
    row = summary[(summary["config"] == SOFT) & (summary["stage"] == "after")]
    row = row[row["class"] == "3"].iloc[0]
    assert row["mean"] == 0.9 and row["n"] == 2 and row["teacher_run_ids"].count(";") == 1


def test_the_mythical_three_claims_follow_the_numbers():
    claims = _claims(_synthetic(after_on_3=9)).set_index("claim")
    assert claims.index[0] == "the teacher learns (sanity)"
    assert claims.loc["the teacher learns (sanity)", "verdict"] == "supported"
    soft_claim = (
        "without a class in the transfer set, the distilled student gets it right after the "
        "bias shift"
    )
    hard_claim = "without a class in the transfer set, the hard-label student never gets it right"
    assert claims.loc[soft_claim, "verdict"] == "supported"
    assert claims.loc[soft_claim, "value"] == 0.9
    assert math.isclose(claims.loc[soft_claim, "paper_value"], 1 - 14 / 1010)
    # the paper gives no student size nor temperature for its transfer-set experiments
    setting = claims.loc[soft_claim, "paper_setting"]
    assert "student size and T not given" in setting and "T = 20" not in setting
    assert claims.loc[hard_claim, "verdict"] == "supported"
    worse = _claims(_synthetic(after_on_3=5)).set_index("claim")
    assert worse.loc[soft_claim, "verdict"] == "contradicted"  # 0.5 on the 3s, both seeds
    only = worse.loc["only some classes in the transfer set: test error after the shift <= 25%"]
    assert only["verdict"] == "not applicable"  # no transfer set keeps only some classes


ONLY78 = {**STUDY, "transfer_sets": [{"name": "only78", "keep": [7, 8], "temperature": 4}]}
SOFT78 = SOFT.replace("/no3/", "/only78/")


def _only78(after_unseen: int, after_kept: int = 9) -> dict[str, pd.DataFrame]:
    """A teacher and a student distilled on the 7s and 8s only, two seeds: before the shift
    the student gets 9 of the 10 test 7s and 8s and no other image; after it,
    ``after_unseen`` of each other class's 10 and ``after_kept`` of the 7s' and 8s'."""
    runs, preds = [], []
    before = {c: 0 for c in range(10)} | {7: 9, 8: 9}
    after = {c: after_unseen for c in range(10)} | {7: after_kept, 8: after_kept}
    for seed in (0, 1):
        for config, role in ((T_CONFIG, "teacher"), (SOFT78, "student")):
            run_id = f"{config}/seed{seed}"
            soft = role == "student"
            runs += _run_rows(run_id, seed, role, soft, "only78", ("shift_only78", -7.5))
            preds.append(_predictions(run_id, "clean", before if soft else {}))
            preds.append(_predictions(run_id, "shift_only78", after if soft else {}))
    return {"runs": pd.DataFrame(runs), "predictions": pd.concat(preds, ignore_index=True)}


@pytest.mark.parametrize(
    ("after_unseen", "after_kept", "after", "verdict_after", "verdict_drop"),
    [
        (9, 9, 0.10, "supported", "supported"),  # the paper's case: 82% -> 10% error
        (5, 9, 0.42, "contradicted", "supported"),  # a 40-point drop to a poor student
        (0, 9, 0.82, "contradicted", "contradicted"),  # predicts only 7 and 8, shift or not
        (2, 5, 0.74, "contradicted", "contradicted"),  # 8 points lower: not the 15 claimed
    ],
)
def test_only_7s_and_8s_the_error_after_the_shift_and_the_drop_are_judged(
    after_unseen, after_kept, after, verdict_after, verdict_drop
):
    """The claims on a student distilled on the 7s and 8s: its error before the shift (82%,
    the error of a student that predicts only 7 and 8) is reported without a verdict; its
    error after the shift must be at most 25% and the shift must lower it by 15 points."""
    tables = _only78(after_unseen, after_kept)
    study = config_of(ONLY78)["studies"]["d"]
    from corruptlab.report.claims import check_claims

    claims = check_claims(
        "distillation", {**tables, "errors": distillation_tables.errors(tables, study)}, study
    )
    only = claims[claims["claim"].str.startswith("only some classes")].set_index("claim")
    assert len(only) == 3
    before = only.loc[
        "only some classes in the transfer set: test error before the shift (reported)"
    ]
    assert before["verdict"] == "reported"
    assert before["value"] == pytest.approx(0.82) and before["paper_value"] == 0.473
    row = only.loc["only some classes in the transfer set: test error after the shift <= 25%"]
    assert row["value"] == pytest.approx(after) and row["verdict"] == verdict_after
    assert row["paper_value"] == pytest.approx(0.132)
    assert "T = 20" not in row["paper_setting"] and "2x800" not in row["paper_setting"]
    drop = only.loc[
        "only some classes in the transfer set: the shift lowers test error by >= 15 points"
    ]
    assert drop["value"] == pytest.approx(0.82 - after) and drop["verdict"] == verdict_drop


def _whole_set_errors() -> pd.DataFrame:
    """The errors table of a teacher, a hard-label student and students at T = 2 and 8 on the
    whole training set (two seeds), and of the mythical-3 runs above."""
    runs, preds = [], []
    soft = (
        "student/s/none/all/from-m+none+adam-lr0.001-wd0-bs128/adam-lr0.001-wd0-kd-t{t}-a0.5-bs128"
    )
    for seed in (0, 1):
        for config, temp, wrong in (
            (T_CONFIG, None, 1),
            ("student/s/none/all/hard/adam-lr0.001-wd0-bs128", None, 3),
            (soft.format(t=2), 2.0, 2),
            (soft.format(t=8), 8.0, 2),
        ):
            run_id = f"{config}/seed{seed}"
            teacher = config == T_CONFIG
            runs.append(
                {
                    "run_id": run_id,
                    "study": "d",
                    "seed": seed,
                    "model": "m" if teacher else "s",
                    "role": "teacher" if teacher else "student",
                    "transfer_set": "all",
                    "teacher_run_id": None if temp is None else f"{T_CONFIG}/seed{seed}",
                    "teacher_model": None if temp is None else "m",
                    "teacher_noise": None if temp is None else "none",
                    "kd_temperature": np.nan if temp is None else temp,
                    "kd_alpha": np.nan if temp is None else 0.5,
                    "objective": None if temp is None else f"kd-t{temp:g}-a0.5",
                    "condition": "clean",
                    "bias_shift": np.nan,
                }
            )
            preds.append(_predictions(run_id, "clean", {c: 10 - wrong for c in range(10)}))
    study = config_of({**STUDY, "transfer_sets": [{"name": "all"}]})["studies"]["d"]
    tables = {"runs": pd.DataFrame(runs), "predictions": pd.concat(preds, ignore_index=True)}
    return distillation_tables.errors(tables, study)


def test_the_figures_draw_what_the_tables_hold():
    e = _whole_set_errors()
    fig = distillation_figures.errors_vs_temperature({"errors": e})
    ax = fig.axes[0]
    handles, labels = ax.get_legend_handles_labels()
    assert sorted(labels) == ["distilled, alpha=0.5", "hard labels", "teacher"]
    bars, hard, teacher = (dict(zip(labels, handles, strict=True))[k] for k in sorted(labels))
    # each distilled mean carries its CI as an error bar: seen even at a single temperature
    assert bars.has_yerr and len(bars.lines[2][0].get_segments()) == 2
    distilled = bars.lines[0]
    assert list(distilled.get_xdata()) == [2.0, 8.0]
    assert list(distilled.get_ydata()) == [20.0, 20.0]  # 2 errors in each of 10 classes
    assert hard.get_ydata()[0] == 30.0 and teacher.get_ydata()[0] == 10.0
    fig = distillation_figures.noisy_teachers({"errors": e})
    ax = fig.axes[0]
    assert len(ax.patches) == 0  # points, not bars: no length on an axis that starts above 0
    points = [line.get_ydata()[0] for line in ax.get_lines() if line.get_marker() == "o"]
    assert points == pytest.approx([90.0, 80.0, 80.0, 70.0])  # teacher, T=2, T=8, hard labels
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "teacher",
        "distilled T=2 alpha=0.5",
        "distilled T=8 alpha=0.5",
        "hard labels",
    ]
    low, high = ax.get_ylim()
    assert low < 70.0 and high > 90.0
    no3 = distillation_tables.errors(_synthetic(after_on_3=9), config_of(NO3)["studies"]["d"])
    fig = distillation_figures.unseen_class_accuracy({"errors": no3})
    heights = [p.get_height() for p in fig.axes[0].patches]
    # hard labels before, distilled before; hard labels after, distilled after (accuracy on 3s)
    assert heights == pytest.approx([0.0, 40.0, 0.0, 90.0])
    assert fig.axes[0].get_title() == "transfer set no3 (unseen: 3)"
