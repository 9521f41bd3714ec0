"""Config validation (schema + registries, every problem reported) and grid expansion."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from corruptlab.core import packs
from corruptlab.core.config import ConfigError, expand_runs, validate_config
from corruptlab.core.grid import noise_specs, seed_list, seed_packs

ROOT = Path(__file__).resolve().parents[1]

MINIMAL = {
    "studies": {
        "quick": {
            "kind": "label_noise",
            "dataset": "mnist5k",
            "models": ["mlp1"],
            "noise": [{"kind": "uniform", "alpha": [0, 2]}],
            "optimizers": [{"name": "adadelta", "lr": [0.1, 1.0]}],
        }
    }
}


def minimal() -> dict:
    return copy.deepcopy(MINIMAL)


def study(config: dict) -> dict:
    return config["studies"]["quick"]


def runs_of(config: dict, name: str = "quick") -> list[dict]:
    validate_config(config)
    return expand_runs(name, config["studies"][name], config)


def problems(config: dict) -> list[str]:
    """The problem lines of the ConfigError raised for ``config``."""
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    lines = str(err.value).splitlines()
    if lines[0] == "invalid config (see config/README.md):":
        assert all(line.startswith("  - ") for line in lines[1:]), lines
        return [line[4:] for line in lines[1:]]
    return lines


# ---------------------------------------------------------------------------------- valid


def test_minimal_config_gets_its_defaults():
    config = minimal()
    out = validate_config(config)
    assert out is config  # validated in place
    assert config == {
        "device": "auto",
        "threads": 1,
        "data": {"mirrors": [], "split_seed": 0},
        "studies": {
            "quick": {
                **MINIMAL["studies"]["quick"],
                "batch_size": 128,
                "max_epochs": 20,  # patience is left out: each run's is min(5, max_epochs)
                "seeds": 3,
                "evaluation": {
                    "corruptions": [],
                    "severities": [1, 2, 3, 4, 5],
                    "methods": [{"name": "source"}],
                },
                "resources": {"gpus": 0, "mem_mb": 4000, "runtime": 60},
                "train": {"seeds_per_job": "auto", "packing": "sequential"},
            }
        },
        "study_kinds": [],
    }


def test_explicit_values_are_kept():
    config = minimal()
    config.update(device="cuda:1", threads=4, data={"split_seed": 7})
    study(config).update(batch_size=[32, 64], max_epochs=50, patience=50, seeds=[0, 5])
    validate_config(config)
    assert (config["device"], config["threads"]) == ("cuda:1", 4)
    assert config["data"] == {"split_seed": 7, "mirrors": []}
    s = study(config)
    kept = (s["batch_size"], s["max_epochs"], s["patience"], s["seeds"])
    assert kept == ([32, 64], 50, 50, [0, 5])


@pytest.mark.parametrize(
    "seeds, per_job, packs",
    [
        (3, 1, []),
        (5, 2, [[0, 1], [2, 3], [4]]),
        (4, 4, [[0, 1, 2, 3]]),
        (2, 8, [[0, 1]]),
        ([9, 2, 5], 2, [[2, 5], [9]]),
    ],
)
def test_seed_packs_chunk_the_sorted_seeds(seeds, per_job, packs):
    config = minimal()
    study(config).update(seeds=seeds, train={"seeds_per_job": per_job})
    validate_config(config)
    assert seed_packs(study(config)) == packs


@pytest.mark.parametrize(
    "seeds, n_runs, train, expected",
    [
        (3, 1999, {}, []),  # below the threshold: one run per job
        (25, 2000, {}, [list(range(10)), list(range(10, 20)), list(range(20, 25))]),
        (5, 10_000, {}, [[0, 1, 2, 3, 4]]),
        (25, 2000, {"packing": "vmap"}, []),  # vmap is never chosen for the user
        (3, 10_000, {"seeds_per_job": 1}, []),  # an explicit value is kept
        (3, 10, {"seeds_per_job": 2}, [[0, 1], [2]]),
    ],
)
def test_auto_seeds_per_job_packs_large_studies_sequentially(seeds, n_runs, train, expected):
    config = minimal()
    study(config).update(seeds=seeds, train=train)
    validate_config(config)
    assert seed_packs(packs.resolved(study(config), n_runs)) == expected
    assert packs.AUTO_PACK_RUNS == 2000 and packs.AUTO_SEEDS_PER_JOB == 10  # config/README.md


def test_vmap_packing_is_refused_for_models_with_dropout():
    config = minimal()
    study(config).update(models=["mlp1", "net"], train={"seeds_per_job": 0})
    with pytest.raises(
        ConfigError,
        match=r"studies.quick.train.seeds_per_job: got 0; accepted: an integer >= 1 or 'auto'",
    ):
        validate_config(config)
    study(config)["train"] = {"seeds_per_job": 2, "packing": "vmap"}
    with pytest.raises(
        ConfigError, match=r"train.packing: vmap with seeds_per_job 2, but net has dropout"
    ):
        validate_config(config)
    study(config)["train"] = {"seeds_per_job": 2, "packing": "loop"}
    with pytest.raises(ConfigError, match=r"packing: got 'loop'; accepted: one of sequential, v"):
        validate_config(config)
    study(config)["train"] = {"seeds_per_job": 2}  # one after another: dropout is no matter
    assert validate_config(config)["studies"]["quick"]["train"]["packing"] == "sequential"


def test_expand_runs_minimal():
    config = minimal()
    runs = runs_of(config)
    assert len(runs) == 1 * 2 * 2 * 3 == 12
    ids = [r["run_id"] for r in runs]
    assert ids == [
        f"mlp1/uniform-a{a}/adadelta-lr{lr}-wd0-bs128/seed{s}"
        for a in (0, 2)
        for lr in ("0.1", "1")
        for s in (0, 1, 2)
    ]
    assert "mlp1/uniform-a2/adadelta-lr0.1-wd0-bs128/seed1" in ids
    run = runs[ids.index("mlp1/uniform-a2/adadelta-lr0.1-wd0-bs128/seed1")]
    assert run == {
        "study": "quick",
        "kind": "label_noise",
        "dataset": "mnist5k",
        "split_seed": 0,
        "model": "mlp1",
        "noise": {"kind": "uniform", "alpha": 2},
        "noise_slug": "uniform-a2",
        "optimizer": {"name": "adadelta", "lr": 0.1, "weight_decay": 0.0},
        "optim_slug": "adadelta-lr0.1-wd0-bs128",
        "batch_size": 128,
        "max_epochs": 20,
        "patience": 5,
        "seed": 1,
        "device": "auto",
        "run_id": "mlp1/uniform-a2/adadelta-lr0.1-wd0-bs128/seed1",
    }
    assert noise_specs(runs) == {
        "uniform-a0": {"kind": "uniform", "alpha": 0},
        "uniform-a2": {"kind": "uniform", "alpha": 2},
    }


def test_seeds_as_an_explicit_list():
    config = minimal()
    study(config)["seeds"] = [4, 7]
    runs = runs_of(config)
    assert len(runs) == 8
    assert [r["seed"] for r in runs[:2]] == [4, 7]
    assert runs[1]["run_id"] == "mlp1/uniform-a0/adadelta-lr0.1-wd0-bs128/seed7"
    assert seed_list(3) == [0, 1, 2] and seed_list([4, 7]) == [4, 7]


def test_list_valued_batch_size_expands():
    config = minimal()
    study(config)["batch_size"] = [32, 128]
    runs = runs_of(config)
    assert len(runs) == 24
    assert sorted({r["batch_size"] for r in runs}) == [32, 128]
    assert {r["optim_slug"] for r in runs} == {
        "adadelta-lr0.1-wd0-bs32",
        "adadelta-lr0.1-wd0-bs128",
        "adadelta-lr1-wd0-bs32",
        "adadelta-lr1-wd0-bs128",
    }


def test_grid_over_several_kinds_and_parameters():
    config = minimal()
    s = study(config)
    s["models"] = ["perceptron", "conv4"]
    s["noise"] = [
        {"kind": "none"},
        {"kind": "structured", "alpha": [1, 2], "delta": [0.25, 0.5]},
        {"kind": "flip", "p": 0.2},
    ]
    s["optimizers"] = [
        {"name": "sgd", "lr": 1, "momentum": [0, 0.9]},
        {"name": "adam", "lr": 0.001, "weight_decay": 1e-5},
    ]
    s["seeds"] = 1
    runs = runs_of(config)
    assert len(runs) == 2 * (1 + 4 + 1) * (2 + 1) * 1 == 36
    assert list(noise_specs(runs)) == [
        "none",
        "structured-a1-d0.25",
        "structured-a1-d0.5",
        "structured-a2-d0.25",
        "structured-a2-d0.5",
        "flip-p0.2",
    ]
    assert [r["optim_slug"] for r in runs[:3]] == [
        "sgd-lr1-m0-wd0-bs128",
        "sgd-lr1-m0.9-wd0-bs128",
        "adam-lr0.001-wd1e-05-bs128",
    ]
    assert runs[0]["run_id"] == "perceptron/none/sgd-lr1-m0-wd0-bs128/seed0"
    assert runs[-1]["run_id"] == "conv4/flip-p0.2/adam-lr0.001-wd1e-05-bs128/seed0"
    # values take the declared type: lr 1 -> 1.0 (float), alpha stays an int
    assert runs[0]["optimizer"] == {"name": "sgd", "lr": 1.0, "momentum": 0.0, "weight_decay": 0.0}
    assert isinstance(runs[0]["optimizer"]["lr"], float)
    structured = noise_specs(runs)["structured-a2-d0.5"]
    assert structured == {"kind": "structured", "alpha": 2, "delta": 0.5}
    assert isinstance(structured["alpha"], int)
    assert len({r["run_id"] for r in runs}) == 36


def test_config_values_reach_every_run():
    config = minimal()
    config.update(device="cpu", data={"split_seed": 3})
    study(config).update(max_epochs=7, patience=2, seeds=1)
    runs = runs_of(config)
    assert {(r["device"], r["split_seed"], r["max_epochs"], r["patience"]) for r in runs} == {
        ("cpu", 3, 7, 2)
    }


def test_shipped_configs_validate():
    config = validate_config(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    for name, s in config["studies"].items():
        runs = expand_runs(name, s, config)
        assert len(runs) > 0
        assert len({r["run_id"] for r in runs}) == len(runs)
    paper = validate_config(
        yaml.safe_load((ROOT / "config" / "studies" / "label_noise.yaml").read_text())
    )
    runs = expand_runs("label_noise", paper["studies"]["label_noise"], paper)
    assert len(runs) == 5 * 13 * 5 * 5 == 1625  # as its header says


# ------------------------------------------------------------------------------------ invalid


def _set(*path_and_value):
    """A mutation setting config[path...] = value (the last argument)."""
    *path, value = path_and_value

    def mutate(config: dict) -> None:
        target = config
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _del(*path):
    def mutate(config: dict) -> None:
        target = config
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


Q = ("studies", "quick")
NOISE0 = (*Q, "noise", 0)
OPT0 = (*Q, "optimizers", 0)
MODELS = (
    "accepted: perceptron, mlp1, mlp2, mlp4, conv4, net, conv4_bn, mlp_bn, mlp2_4096, "
    "net_notebook, mlp_300_100, mlp_d10, mlp_d10_bn, mlp_d20, mlp_d20_bn, resnet_preact, "
    "resnet_preact_bn, mlp_1200_dropout_jitter, mlp_400_dropout_jitter, mlp_800, mlp3_gelu"
)
STUDY_KEYS = (  # of a label_noise study; other kinds add their own (memorization:, ood:, ...)
    "batch_size, dataset, evaluation, in_classes, kind, max_epochs, models, noise, objective, "
    "optimizers, patience, resources, seeds, train"
)

BAD = [
    pytest.param(
        _set("foo", 1),
        [
            "<top level>: unknown key(s) 'foo'; accepted: data, device, studies, study_kinds, "
            "threads"
        ],
        id="unknown-top-level-key",
    ),
    pytest.param(
        _set(*Q, "max_epoch", 10),
        [f"studies.quick: unknown key(s) 'max_epoch'; accepted: {STUDY_KEYS}"],
        id="unknown-study-key",
    ),
    pytest.param(
        _set("data", {"split": 1}),
        ["data: unknown key(s) 'split'; accepted: mirrors, split_seed"],
        id="unknown-data-key",
    ),
    pytest.param(
        _set(*Q, "max_epochs", "ten"),
        ["studies.quick.max_epochs: got 'ten'; accepted: an integer >= 1 or a non-empty list"],
        id="wrong-type-max-epochs",
    ),
    pytest.param(
        _set(*Q, "patience", 0),
        [
            "studies.quick.patience: got 0; accepted: an integer >= 1 (early stopping: epochs "
            "without a better clean validation accuracy; default min(5, max_epochs) of each run)"
        ],
        id="patience-0",
    ),
    pytest.param(
        _set("threads", 0),
        [
            "threads: got 0; accepted: an integer >= 1 (CPU threads per training or evaluation job "
            "(the rules' threads:))"
        ],
        id="threads-0",
    ),
    pytest.param(
        _set("data", {"split_seed": -1}),
        [
            "data.split_seed: got -1; accepted: an integer >= 0 (seed of the frozen, stratified "
            "train/validation/test split)"
        ],
        id="split-seed-negative",
    ),
    pytest.param(
        _set(*NOISE0, "alpha", -1),
        ["studies.quick.noise[0].alpha: got -1; accepted: an integer in [0, inf]"],
        id="alpha-negative",
    ),
    pytest.param(
        _set(*NOISE0, "alpha", [0, 2, -3]),
        ["studies.quick.noise[0].alpha: got -3; accepted: an integer in [0, inf]"],
        id="alpha-list-entry-negative",
    ),
    pytest.param(
        _set(*NOISE0, "alpha", 2.5),
        ["studies.quick.noise[0].alpha: got 2.5; accepted: an integer in [0, inf]"],
        id="alpha-not-integer",
    ),
    pytest.param(
        _set(*Q, "noise", [{"kind": "structured", "alpha": 2, "delta": 1.5}]),
        ["studies.quick.noise[0].delta: got 1.5; accepted: a number in [0, 1]"],
        id="delta-above-1",
    ),
    pytest.param(
        _set(*Q, "noise", [{"kind": "flip", "p": [0.2, -0.5]}]),
        ["studies.quick.noise[0].p: got -0.5; accepted: a number in [0, 1]"],
        id="flip-p-negative",
    ),
    pytest.param(
        _set(*OPT0, "lr", -0.1),
        ["studies.quick.optimizers[0].lr: got -0.1; accepted: a number in (0, inf]"],
        id="lr-negative",
    ),
    pytest.param(
        _set(*Q, "optimizers", [{"name": "sgd", "lr": 0.1, "momentum": 1.5}]),
        ["studies.quick.optimizers[0].momentum: got 1.5; accepted: a number in [0, 1]"],
        id="momentum-above-1",
    ),
    pytest.param(
        _set(*Q, "models", ["mlp1", "resnet"]),
        [f"studies.quick.models[1]: unknown model 'resnet'; {MODELS}"],
        id="unknown-model",
    ),
    pytest.param(
        _set(*Q, "dataset", "cifar100"),
        [
            "studies.quick.dataset: unknown dataset 'cifar100'; "
            "accepted: mnist5k, mnist, fashion-mnist, kmnist, cifar10"
        ],
        id="unknown-dataset",
    ),
    pytest.param(
        _set(*Q, "kind", "robustness"),
        ["studies.quick.kind: unknown study kind 'robustness'; accepted: label_noise"],
        id="unknown-study-kind",
    ),
    pytest.param(
        _set(*NOISE0, "kind", "gaussian"),
        [
            "studies.quick.noise[0].kind: unknown label-noise kind 'gaussian'; "
            "accepted: none, uniform, structured, flip, randx"
        ],
        id="unknown-noise-kind",
    ),
    pytest.param(
        _set(*OPT0, "name", "rmsprop"),
        [
            "studies.quick.optimizers[0].name: unknown optimizer 'rmsprop'; "
            "accepted: adadelta, sgd, adam"
        ],
        id="unknown-optimizer",
    ),
    pytest.param(
        _set(*NOISE0, "delta", 0.5),
        ["studies.quick.noise[0].delta: not a parameter of 'uniform'; accepted: alpha"],
        id="param-not-of-noise-kind",
    ),
    pytest.param(
        _set(*Q, "noise", [{"kind": "none", "alpha": 2}]),
        ["studies.quick.noise[0].alpha: not a parameter of 'none'; accepted: no parameters"],
        id="param-for-parameterless-kind",
    ),
    pytest.param(
        _set(*Q, "optimizers", [{"name": "adam", "lr": 0.001, "momentum": 0.9}]),
        [
            "studies.quick.optimizers[0].momentum: not a parameter of 'adam'; "
            "accepted: lr, weight_decay"
        ],
        id="param-not-of-optimizer",
    ),
    pytest.param(
        _set(*Q, "noise", [{"kind": "structured", "alpha": 2}]),
        [
            "studies.quick.noise[0].delta: missing; accepted: a number in [0, 1] "
            "(probability of the confusing class)"
        ],
        id="structured-without-delta",
    ),
    pytest.param(
        _set(*Q, "noise", [{"kind": "uniform"}]),
        [
            "studies.quick.noise[0].alpha: missing; accepted: an integer in [0, inf] "
            "(noisy copies per clean training example)"
        ],
        id="uniform-without-alpha",
    ),
    pytest.param(
        _del(*OPT0, "lr"),
        ["studies.quick.optimizers[0].lr: missing; accepted: a number in (0, inf] (learning rate)"],
        id="optimizer-without-lr",
    ),
    pytest.param(
        _del(*Q, "dataset"),
        [
            "studies.quick.dataset: missing; accepted: one of mnist5k, mnist, fashion-mnist, "
            "kmnist, cifar10 (dataset name (registry corruptlab.data.datasets.DATASETS))"
        ],
        id="study-without-dataset",
    ),
    pytest.param(
        _del("studies"),
        [
            "studies: missing; accepted: a mapping with at least 1 entry (named studies; results "
            "go to results/<name>/)"
        ],
        id="missing-studies",
    ),
    pytest.param(
        _set("studies", {}),
        [
            "studies: got {}; accepted: a mapping with at least 1 entry (named studies; results "
            "go to results/<name>/)"
        ],
        id="no-studies",
    ),
    pytest.param(
        lambda c: c["studies"].update({"1study": c["studies"].pop("quick")}),
        [
            "studies: study name '1study' is not accepted; a name starts with a letter and has "
            "only letters, digits and '_' (it becomes a directory name)"
        ],
        id="bad-study-name",
    ),
    pytest.param(
        _set("device", "gpu"),
        [
            "device: got 'gpu'; accepted: a string matching '^(auto|cpu|cuda(:[0-9]+)?)$' "
            "(torch device for training and evaluation: auto (cuda if visible, else cpu), cpu, "
            "cuda or cuda:N)",
            "auto (cuda if visible, else cpu), cpu, cuda or cuda:N",
        ],
        id="bad-device",
    ),
    pytest.param(
        _set("data", {"mirrors": ["https://mirror.example/mnist/", "example.org/mnist"]}),
        [
            "data.mirrors[1]: got 'example.org/mnist'; accepted: a string matching '^(https?|ftp|file)://'"
        ],
        id="mirror-not-a-url",
    ),
    pytest.param(
        _set(*Q, "patience", 30),
        [
            "studies.quick.patience: 30 exceeds max_epochs 20; "
            "accepted: an integer in [1, max_epochs]"
        ],
        id="patience-above-max-epochs",
    ),
    pytest.param(
        _set(*Q, "models", []),
        [
            "studies.quick.models: got []; accepted: a non-empty list of distinct names out of "
            "perceptron, mlp1, mlp2, mlp4, conv4, net, conv4_bn, mlp_bn, mlp2_4096, "
            "net_notebook, mlp_300_100, mlp_d10, mlp_d10_bn, mlp_d20, mlp_d20_bn, resnet_preact, "
            "resnet_preact_bn, mlp_1200_dropout_jitter, mlp_400_dropout_jitter, mlp_800, "
            "mlp3_gelu (model names (registry corruptlab.train.models.MODELS))"
        ],
        id="empty-models",
    ),
    pytest.param(
        _set(*Q, "models", ["mlp1", "mlp1"]),
        [
            "studies.quick.models: got ['mlp1', 'mlp1']; accepted: a non-empty list of distinct "
            "names out of perceptron, mlp1, mlp2, mlp4, conv4, net, conv4_bn, mlp_bn, mlp2_4096, "
            "net_notebook, mlp_300_100, mlp_d10, mlp_d10_bn, mlp_d20, mlp_d20_bn, resnet_preact, "
            "resnet_preact_bn, mlp_1200_dropout_jitter, mlp_400_dropout_jitter, mlp_800, "
            "mlp3_gelu (model names (registry corruptlab.train.models.MODELS))"
        ],
        id="repeated-model",
    ),
    pytest.param(
        _set(*Q, "seeds", 0),
        ["studies.quick.seeds: got 0; accepted: an integer >= 1 or a non-empty list of"],
        id="seeds-0",
    ),
    pytest.param(
        _set(*Q, "batch_size", 0),
        ["studies.quick.batch_size: got 0; accepted: an integer >= 1 or a non-empty list of"],
        id="batch-size-0",
    ),
    pytest.param(
        _set(*Q, "noise", [{"kind": "uniform", "alpha": 2}, {"kind": "uniform", "alpha": 2}]),
        ["studies.quick: the grid repeats runs: mlp1/uniform-a2/adadelta-lr0.1-wd0-bs128/seed0, "],
        id="duplicate-noise-spec",
    ),
    pytest.param(
        _set(*OPT0, "schedule", {"name": "step", "gamma": 2}),
        ["studies.quick.optimizers[0].schedule.gamma: got 2; accepted: a number in (0, 1]"],
        id="schedule-gamma-above-1",
    ),
    pytest.param(
        _set(*OPT0, "schedule", {"name": "step", "gamma": [0.5, 0]}),
        ["studies.quick.optimizers[0].schedule.gamma: got 0; accepted: a number in (0, 1]"],
        id="schedule-gamma-list-entry-0",
    ),
    pytest.param(
        _set(*OPT0, "schedule", {"name": "linear"}),
        [
            "studies.quick.optimizers[0].schedule.name: unknown lr schedule 'linear'; "
            "accepted: constant, step, cosine, drop"
        ],
        id="unknown-schedule",
    ),
    pytest.param(
        _set(*OPT0, "schedule", {"name": "cosine", "gamma": 0.5}),
        ["studies.quick.optimizers[0].schedule.gamma: not a parameter of 'cosine'; accepted: no "],
        id="param-not-of-schedule",
    ),
    pytest.param(
        _set(*OPT0, "schedule", "step"),
        [
            "studies.quick.optimizers[0].schedule: got 'step'; accepted: a mapping "
            "(learning-rate schedule over the epochs (registry "
            "corruptlab.train.schedules.SCHEDULES); default constant; list-valued parameters "
            "expand into a grid)"
        ],
        id="schedule-not-a-mapping",
    ),
    pytest.param(
        _set(*OPT0, "schedule", {"gamma": 0.5}),
        [
            "studies.quick.optimizers[0].schedule.name: missing; "
            "accepted: one of constant, step, cosine, drop"
        ],
        id="schedule-without-name",
    ),
    pytest.param(
        _set(*Q, "objective", {"name": "mse"}),
        ["studies.quick.objective.name: unknown objective 'mse'; accepted: cross_entropy, distil"],
        id="unknown-objective",
    ),
    pytest.param(
        _set(*Q, "objective", {"name": "cross_entropy", "temperature": 2}),
        [
            "studies.quick.objective.temperature: not a parameter of 'cross_entropy'; "
            "accepted: no parameters"
        ],
        id="param-not-of-objective",
    ),
    pytest.param(
        _set(*Q, "objective", {"name": "distillation", "temperature": 4, "alpha": 0.5}),
        [
            "studies.quick.objective.name: 'distillation' trains on soft targets (a teacher's "
            "logits for every training example), which the runs of a 'label_noise' study do not "
            "have; accepted: cross_entropy, or a study of kind 'distillation' (which gives its "
            "runs soft targets and sets their objective itself)"
        ],
        id="distillation-without-soft-targets",
    ),
    pytest.param(
        _set(*OPT0, "lr", [1, 1.0]),
        ["studies.quick: the grid repeats runs: mlp1/uniform-a0/adadelta-lr1-wd0-bs128/seed0"],
        id="duplicate-lr-value",
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), BAD)
def test_bad_config_is_rejected_naming_key_and_accepted_values(mutate, expected):
    config = minimal()
    mutate(config)
    found = problems(config)
    assert len(found) == 1, found
    for text in expected:
        assert text in found[0], f"{text!r} not in {found[0]!r}"


def test_config_error_is_a_value_error_with_a_header():
    config = minimal()
    study(config)["models"] = ["resnet"]
    with pytest.raises(ValueError) as err:
        validate_config(config)
    assert isinstance(err.value, ConfigError)
    assert str(err.value) == (
        "invalid config (see config/README.md):\n"
        "  - studies.quick.models[0]: unknown model 'resnet'; " + MODELS
    )


def test_two_registry_mistakes_are_reported_together():
    config = minimal()
    study(config).update(models=["resnet", "mlp1", "vit"], dataset="cifar100")
    assert problems(config) == [
        "studies.quick.dataset: unknown dataset 'cifar100'; "
        "accepted: mnist5k, mnist, fashion-mnist, kmnist, cifar10",
        f"studies.quick.models[0]: unknown model 'resnet'; {MODELS}",
        f"studies.quick.models[2]: unknown model 'vit'; {MODELS}",
    ]


def test_two_schema_mistakes_are_reported_together():
    config = minimal()
    config["device"] = "gpu"
    study(config)["max_epochs"] = "ten"
    found = problems(config)
    assert len(found) == 2, found
    assert any(p.startswith("device: got 'gpu'; accepted: a string matching") for p in found)
    assert any(p.startswith("studies.quick.max_epochs: got 'ten'; accepted") for p in found)


def test_mistakes_in_two_studies_are_reported_together():
    config = minimal()
    config["studies"]["other"] = copy.deepcopy(study(config))
    study(config)["noise"][0]["alpha"] = -1
    config["studies"]["other"]["optimizers"][0]["name"] = "rmsprop"
    found = problems(config)
    assert found == [
        "studies.quick.noise[0].alpha: got -1; accepted: an integer in [0, inf]",
        "studies.other.optimizers[0].name: unknown optimizer 'rmsprop'; "
        "accepted: adadelta, sgd, adam",
    ]


def test_schema_and_registry_mistakes_are_reported_together():
    # FAILS until config.py also runs the registry checks when the schema finds problems
    # (today only the schema problem is reported; the unknown model surfaces on the next run)
    config = minimal()
    study(config).update(max_epochs="ten", models=["resnet"])
    found = problems(config)
    assert any(p.startswith("studies.quick.max_epochs: got 'ten'; accepted") for p in found)
    assert f"studies.quick.models[0]: unknown model 'resnet'; {MODELS}" in found


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        ((*Q, "seeds"), 3.0, "studies.quick.seeds"),
        ((*Q, "max_epochs"), 20.0, "studies.quick.max_epochs"),
        ((*Q, "patience"), 5.0, "studies.quick.patience"),
        ((*Q, "batch_size"), 64.0, "studies.quick.batch_size"),
        (("threads",), 2.0, "threads"),
        (("data", "split_seed"), 0.0, "data.split_seed"),
    ],
    ids=["seeds", "max_epochs", "patience", "batch_size", "threads", "split_seed"],
)
def test_integral_floats_are_not_integers(path, value, where):
    # FAILS today: jsonschema counts 3.0 as an integer, so these pass validation and break
    # later (seeds: 3.0 -> TypeError in expand_runs; the others reach range()/DataLoader)
    config = minimal()
    if path[0] == "data":
        config["data"] = {}
    _set(*path, value)(config)
    found = problems(config)
    assert len(found) == 1, found
    assert found[0].startswith(f"{where}: "), found
    assert "integer" in found[0]


def test_empty_parameter_list_message():
    # FAILS today: the message reads "a number or a list of a numbers"
    config = minimal()
    study(config)["noise"][0]["alpha"] = []
    assert problems(config) == [
        "studies.quick.noise[0].alpha: got []; accepted: a number or a non-empty list of numbers"
    ]


def test_yaml_exponent_without_dot_is_read_as_a_number():
    # PyYAML (YAML 1.1) reads 1e-5 as a string; validate_config reads it as the float it means
    config = minimal()
    study(config)["optimizers"] = yaml.safe_load("[{name: adam, lr: 1e-5}]")
    assert study(config)["optimizers"][0]["lr"] == "1e-5"
    runs = runs_of(config)
    assert runs[0]["optim_slug"] == "adam-lr1e-05-wd0-bs128"
    assert runs[0]["optimizer"]["lr"] == 1e-5 and isinstance(runs[0]["optimizer"]["lr"], float)


# -------------------------------------------------------------------------- config/README.md


def test_readme_example_is_valid():
    text = (ROOT / "config" / "README.md").read_text()
    block = text.split("## Complete example", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    config = validate_config(yaml.safe_load(block))
    runs = expand_runs("noise_sweep", config["studies"]["noise_sweep"], config)
    assert len(runs) == 3 * 6 * 3 * 1 * 3 == 162  # as the README says
    run_id = "conv4/structured-a20-d0.25/sgd-lr0.01-m0.9-wd0.0005-bs128/seed2"
    assert run_id in {r["run_id"] for r in runs}
    assert f"results/noise_sweep/runs/{run_id}/" in text


def test_readme_documents_every_schema_key():
    from corruptlab.core.config import _schema
    from corruptlab.studies import STUDIES

    text = (ROOT / "config" / "README.md").read_text()
    schema = _schema()
    keys = [k for k in schema["properties"] if k != "data"]
    keys += [f"data.{k}" for k in schema["properties"]["data"]["properties"]]
    study = dict(schema["$defs"]["study"]["properties"])
    for _, kind in STUDIES.items():  # each kind's own keys
        study.update(kind.schema)
    keys += list(study)
    sections = [k for k, v in study.items() if "properties" in v]
    assert {"evaluation", "ood", "resources", "train", "memorization"} <= set(sections)
    keys += [k for section in sections for k in study[section]["properties"]]
    missing = [k for k in keys if f"| `{k}` |" not in text]
    assert missing == []


def test_readme_lists_every_registry_entry():
    from corruptlab.data.datasets import DATASETS
    from corruptlab.data.noise import NOISE
    from corruptlab.studies import STUDIES
    from corruptlab.train.models import MODELS as MODEL_REGISTRY
    from corruptlab.train.optim import OPTIMIZERS

    text = (ROOT / "config" / "README.md").read_text()
    names = [*NOISE, *OPTIMIZERS, *MODEL_REGISTRY, *DATASETS, *STUDIES]
    assert [n for n in names if f"| `{n}` |" not in text] == []
    params = {p.name for reg in (NOISE, OPTIMIZERS) for _, k in reg.items() for p in k.params}
    assert params == {"alpha", "delta", "p", "lr", "weight_decay", "momentum"}
    assert [p for p in params if f"`{p}` (`" not in text] == []


# ------------------------------------------------------------- lr schedules and objectives


def test_a_schedule_names_its_runs_and_reaches_their_optimizer():
    config = minimal()
    study(config)["optimizers"] = [
        {"name": "adadelta", "lr": 1.0, "schedule": {"name": "step", "gamma": [0.7, 0.5]}},
        {"name": "sgd", "lr": 0.1, "momentum": 0.9, "schedule": {"name": "cosine"}},
        {"name": "adam", "lr": 0.001},
    ]
    study(config)["seeds"] = 1
    runs = [r for r in runs_of(config) if r["noise"]["alpha"] == 0]
    assert [r["optim_slug"] for r in runs] == [
        "adadelta-lr1-wd0-step-g0.7-bs128",
        "adadelta-lr1-wd0-step-g0.5-bs128",
        "sgd-lr0.1-m0.9-wd0-cosine-bs128",
        "adam-lr0.001-wd0-bs128",
    ]
    assert runs[0]["run_id"] == "mlp1/uniform-a0/adadelta-lr1-wd0-step-g0.7-bs128/seed0"
    assert runs[0]["optimizer"] == {
        "name": "adadelta",
        "lr": 1.0,
        "weight_decay": 0.0,
        "schedule": {"name": "step", "gamma": 0.7},
    }
    assert runs[2]["optimizer"]["schedule"] == {"name": "cosine"}
    assert "schedule" not in runs[3]["optimizer"]
    # a step schedule without gamma takes the PyTorch MNIST example's 0.7
    study(config)["optimizers"] = [{"name": "adadelta", "lr": 1.0, "schedule": {"name": "step"}}]
    assert runs_of(config)[0]["optim_slug"] == "adadelta-lr1-wd0-step-g0.7-bs128"


def test_a_constant_schedule_and_the_default_objective_leave_runs_as_they_were():
    plain = runs_of(minimal())
    config = minimal()
    study(config)["optimizers"][0]["schedule"] = {"name": "constant"}
    study(config)["objective"] = {"name": "cross_entropy"}
    assert runs_of(config) == plain
    assert all("schedule" not in r["optimizer"] and "objective" not in r for r in plain)
    # listing a setting with and without the constant schedule repeats its runs
    config = minimal()
    study(config)["optimizers"].append(
        {"name": "adadelta", "lr": 0.1, "schedule": {"name": "constant"}}
    )
    assert (
        "the grid repeats runs: mlp1/uniform-a0/adadelta-lr0.1-wd0-bs128/seed0"
        in (problems(config)[0])
    )


def test_an_objective_expands_into_the_grid_and_names_its_runs(monkeypatch):
    """With a kind whose grid runs have soft targets (here label_noise made one; the
    distillation kind sets its students' objectives itself), a distillation objective's
    list-valued parameters expand into the grid, its slug
    follows the optimizer's (and schedule's), and the run dict carries it."""
    import copy

    from corruptlab.studies import STUDIES

    kind = copy.copy(STUDIES.get("label_noise"))
    kind.soft_targets = True
    monkeypatch.setitem(STUDIES._entries, "label_noise", kind)
    config = minimal()
    study(config).update(
        optimizers=[{"name": "adadelta", "lr": 1.0, "schedule": {"name": "step"}}],
        objective={"name": "distillation", "temperature": [2, 4], "alpha": 0.5},
        seeds=1,
    )
    runs = [r for r in runs_of(config) if r["noise"]["alpha"] == 0]
    assert [r["run_id"] for r in runs] == [
        f"mlp1/uniform-a0/adadelta-lr1-wd0-step-g0.7-kd-t{t}-a0.5-bs128/seed0" for t in (2, 4)
    ]
    assert runs[1]["objective"] == {"name": "distillation", "temperature": 4.0, "alpha": 0.5}
    # the run's identity: the training job's configuration follows the run dict
    from corruptlab.train.training import TrainConfig

    assert TrainConfig(optimizer=runs[1]["optimizer"], objective=runs[1]["objective"]).lr(2) == 0.7


def test_objective_parameters_are_required_and_checked(monkeypatch):
    config = minimal()
    study(config)["objective"] = {"name": "distillation", "alpha": [0.5, 1.5]}
    found = problems(config)
    assert found[:2] == [
        "studies.quick.objective.temperature: missing; accepted: a number in (0, inf] (softmax "
        "temperature T of both teacher and student)",
        "studies.quick.objective.alpha: got 1.5; accepted: a number in [0, 1]",
    ]
    assert found[2].startswith("studies.quick.objective.name: 'distillation' trains on soft")


def test_readme_lists_every_schedule_and_objective_with_its_parameters():
    from corruptlab.train.objectives import OBJECTIVES
    from corruptlab.train.schedules import SCHEDULES

    text = (ROOT / "config" / "README.md").read_text()
    assert [n for reg in (SCHEDULES, OBJECTIVES) for n in reg if f"| `{n}` |" not in text] == []
    params = {p for reg in (SCHEDULES, OBJECTIVES) for _, k in reg.items() for p in k.params}
    assert {p.name for p in params} == {"gamma", "at", "temperature", "alpha"}
    assert [p.name for p in params if f"`{p.name}` (`{p.code}`: " not in text] == []
    assert "| `schedule` |" in text and "| `objective` |" in text


def test_a_corruption_tta_study_with_several_training_settings_is_refused():
    """Its claims and figures compare adaptation methods per model: two noise settings (or two
    lrs) would be averaged together, so the config is refused, naming the settings."""
    config = minimal()
    study(config).update(kind="corruption_tta", models=["conv4_bn"], max_epochs=2)
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    message = str(err.value)
    assert "studies.quick: trains each model in 4 settings" in message
    assert "uniform-a0/adadelta-lr0.1" in message and "uniform-a2/adadelta-lr1" in message
    assert "accepted: one noise setting and one optimizer setting" in message
    study(config).update(
        noise=[{"kind": "uniform", "alpha": 2}], optimizers=[{"name": "adadelta", "lr": 1.0}]
    )
    validate_config(config)  # one setting per model: accepted
    assert len(runs_of(config)) == 3  # three seeds (the default)
