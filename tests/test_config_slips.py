"""A newcomer's slips in a config (issue 15): defaults valid for every valid value, numbers
written as researchers write them, and every error naming its key, what was given and what
would be accepted."""

from __future__ import annotations

import copy

import pytest

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
