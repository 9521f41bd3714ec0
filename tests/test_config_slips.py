"""A newcomer's slips in a config (issue 15): defaults valid for every valid value, numbers
written as researchers write them, and every error naming its key, what was given and what
would be accepted."""

from __future__ import annotations

import copy

import pytest
import yaml

from corruptlab.core.config import ConfigError, expand_runs, validate_config

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


def minimal(**study) -> dict:
    config = copy.deepcopy(MINIMAL)
    config["studies"]["quick"].update(study)
    return config


def runs_of(config: dict) -> list[dict]:
    validate_config(config)
    return expand_runs("quick", config["studies"]["quick"], config)


def problems(config: dict) -> list[str]:
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    lines = str(err.value).splitlines()
    assert lines[0] == "invalid config (see config/README.md):", lines
    assert all(line.startswith("  - ") for line in lines[1:]), lines
    return [line[4:] for line in lines[1:]]


# ------------------------------------------------------------------------ default patience


@pytest.mark.parametrize(("max_epochs", "patience"), [(1, 1), (3, 3), (5, 5), (20, 5)])
def test_the_default_patience_is_valid_for_every_max_epochs(max_epochs, patience):
    runs = runs_of(minimal(max_epochs=max_epochs))
    assert {r["patience"] for r in runs} == {patience}


def test_the_default_patience_follows_each_runs_epochs_in_an_epoch_grid():
    runs = runs_of(minimal(max_epochs=[2, 10]))
    assert {(r["max_epochs"], r["patience"]) for r in runs} == {(2, 2), (10, 5)}


def test_an_explicit_patience_above_max_epochs_is_still_an_error():
    assert problems(minimal(max_epochs=3, patience=4)) == [
        "studies.quick.patience: 4 exceeds max_epochs 3; accepted: an integer in [1, max_epochs]"
    ]


# ------------------------------------------------------------ numbers as researchers write them

WRITTEN = """
noise:
  - {kind: flip, p: [1e-1, 2.5E-1]}
  - {kind: structured, alpha: 2, delta: 5e-1}
optimizers:
  - {name: sgd, lr: [1e-3, 1.0e-2, 5E-4], momentum: 9e-1, weight_decay: 5e-4}
  - {name: adam, lr: 1e-3, schedule: {name: step, gamma: 7e-1}}
evaluation:
  methods: [{name: source}, {name: tent, lr: [1e-3, 2e-4]}]
"""
DECIMAL = """
noise:
  - {kind: flip, p: [0.1, 0.25]}
  - {kind: structured, alpha: 2, delta: 0.5}
optimizers:
  - {name: sgd, lr: [0.001, 0.01, 0.0005], momentum: 0.9, weight_decay: 0.0005}
  - {name: adam, lr: 0.001, schedule: {name: step, gamma: 0.7}}
evaluation:
  methods: [{name: source}, {name: tent, lr: [0.001, 0.0002]}]
"""


def test_numbers_in_exponent_notation_give_the_same_runs_as_decimals():
    written = yaml.safe_load(WRITTEN)
    assert written["optimizers"][0]["lr"][0] == "1e-3"  # what PyYAML (YAML 1.1) reads
    runs = runs_of(minimal(**written))
    expected = runs_of(minimal(**yaml.safe_load(DECIMAL)))
    assert [r["run_id"] for r in runs] == [r["run_id"] for r in expected]
    assert runs == expected  # the params the rules get, value for value
    lrs = [r["optimizer"]["lr"] for r in runs]
    assert all(type(lr) is float for lr in lrs) and 0.0005 in lrs


def test_an_exponent_on_a_count_is_still_not_an_integer():
    assert problems(minimal(seeds="1e1")) == [
        "studies.quick.seeds: got 10.0; accepted: an integer >= 1 or a non-empty list of "
        "distinct integers each >= 0 (an integer n (seeds 0..n-1) or an explicit list of seeds)"
    ]


@pytest.mark.parametrize("value", ["1e-3x", "fast", "0,001"])
def test_a_string_that_is_not_a_number_says_how_to_write_one(value):
    found = problems(minimal(optimizers=[{"name": "adam", "lr": value}]))
    assert found == [
        f"studies.quick.optimizers[0].lr: got {value!r}; accepted: a number or a non-empty list "
        "of numbers; write a number without quotes, e.g. 0.001, 1e-3 or 1.0e-3"
    ]


def test_text_for_a_registry_parameter_says_how_to_write_a_number():
    config = minimal(
        noise=[{"kind": "flip", "p": "a fifth"}],
        evaluation={"methods": [{"name": "tent", "lr": ["1e-3", "fast"]}]},
    )
    assert problems(config) == [
        "studies.quick.noise[0].p: got 'a fifth'; accepted: a number or a non-empty list of "
        "numbers; write a number without quotes, e.g. 0.001, 1e-3 or 1.0e-3",
        "studies.quick.evaluation.methods[0].lr: got [0.001, 'fast']; accepted: a number or a "
        "non-empty list of numbers; write a number without quotes, e.g. 0.001, 1e-3 or 1.0e-3",
    ]


# ------------------------------------------------------- every error: key, given, accepted


def test_a_missing_dataset_names_the_key_and_the_datasets():
    config = minimal()
    del config["studies"]["quick"]["dataset"]
    assert problems(config) == [
        "studies.quick.dataset: missing; accepted: one of mnist5k, mnist, fashion-mnist, "
        "kmnist, cifar10 (dataset name (registry corruptlab.data.datasets.DATASETS))"
    ]


def test_a_wrong_type_names_the_key_what_was_given_and_the_type_and_range():
    assert problems(minimal(patience=[2, 3])) == [
        "studies.quick.patience: got [2, 3]; accepted: an integer >= 1 (early stopping: epochs "
        "without a better clean validation accuracy; default min(5, max_epochs) of each run)"
    ]


def test_a_dataset_of_the_wrong_type_lists_the_datasets():
    assert problems(minimal(dataset=5)) == [
        "studies.quick.dataset: got 5; accepted: one of mnist5k, mnist, fashion-mnist, "
        "kmnist, cifar10 (dataset name (registry corruptlab.data.datasets.DATASETS))"
    ]


def test_a_missing_noise_kind_lists_the_noise_kinds():
    assert problems(minimal(noise=[{"alpha": 2}])) == [
        "studies.quick.noise[0].kind: missing; accepted: one of none, uniform, structured, flip, "
        "randx"
    ]


@pytest.mark.parametrize(
    ("study", "key"),
    [
        ({"kind": 3}, "studies.quick.kind"),
        ({"models": "mlp1"}, "studies.quick.models"),
        ({"models": ["mlp1", "mlp1"]}, "studies.quick.models"),
        ({"noise": "none"}, "studies.quick.noise"),
        ({"noise": [{"alpha": 1}]}, "studies.quick.noise[0].kind"),
        ({"optimizers": [{"lr": 0.1}]}, "studies.quick.optimizers[0].name"),
        ({"optimizers": [{"name": "sgd"}]}, "studies.quick.optimizers[0].lr"),
        ({"batch_size": 0}, "studies.quick.batch_size"),
        ({"max_epochs": [3, 3]}, "studies.quick.max_epochs"),
        ({"seeds": "three"}, "studies.quick.seeds"),
        ({"evaluation": {"severities": [6]}}, "studies.quick.evaluation.severities[0]"),
        ({"evaluation": {"methods": [{}]}}, "studies.quick.evaluation.methods[0].name"),
        ({"resources": {"gpus": -1}}, "studies.quick.resources.gpus"),
        ({"train": {"seeds_per_job": 0}}, "studies.quick.train.seeds_per_job"),
    ],
)
def test_every_schema_error_names_the_key_the_value_given_and_what_is_accepted(study, key):
    found = problems(minimal(**study))
    assert len(found) == 1, found
    where, _, rest = found[0].partition(": ")
    assert where == key
    assert rest.startswith(("got ", "missing; accepted: ")), rest
    assert "; accepted: " in rest and not rest.endswith("accepted: "), rest
