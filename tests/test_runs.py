"""Run ids and paths (corruptlab.core.runs): defined once, the same for the grid, the workflow's
wildcards and the jobs."""

from __future__ import annotations

import re

import pytest

from corruptlab.core import runs
from corruptlab.core.config import expand_runs, validate_config


def test_ids_and_directories():
    config = runs.config_id("mlp1", "uniform-a3", "adadelta-lr1-wd0-bs128")
    assert config == "mlp1/uniform-a3/adadelta-lr1-wd0-bs128"
    assert runs.config_id("mlp1", "", "sgd") == "mlp1/sgd"  # empty segments left out
    run = runs.run_id(config, 2)
    assert run == "mlp1/uniform-a3/adadelta-lr1-wd0-bs128/seed2"
    assert runs.split_run_id(run) == (config, 2)
    assert runs.run_dir("s", run) == f"results/s/runs/{run}"
    for bad in ("mlp1", "mlp1/seedx", "seed1"):
        with pytest.raises(ValueError, match="not a run id"):
            runs.split_run_id(bad)
    assert runs.config_id(config, "stage2") == f"{config}/stage2"  # extends a configuration
    with pytest.raises(ValueError, match="segment must be"):
        runs.config_id("a//b", "c")
    with pytest.raises(ValueError, match="'a b'"):
        runs.config_id("a b")


def test_the_workflow_patterns_match_every_run_of_a_grid():
    study = {
        "kind": "memorization",
        "dataset": "mnist5k",
        "models": ["mlp1"],
        "noise": [{"kind": "none"}, {"kind": "structured", "alpha": 2, "delta": 0.5}],
        "optimizers": [{"name": "adam", "lr": [1.0e-5, 0.001], "weight_decay": 0.0001}],
        "max_epochs": [1, 10],
        "seeds": [0, 12],
    }
    config = validate_config({"studies": {"s": study}})
    pattern = re.compile(
        runs.RUN_DIR.replace("{study}", "(?P<study>[a-z_]+)")
        .replace("{config}", f"(?P<config>{runs.CONFIG_PATTERN})")
        .replace("{seed}", f"(?P<seed>{runs.SEED_PATTERN})")
    )
    for run in expand_runs("s", config["studies"]["s"], config):
        m = pattern.fullmatch(runs.run_dir("s", run["run_id"]))
        assert m, run["run_id"]
        assert runs.run_id(m["config"], m["seed"]) == run["run_id"]
        assert re.fullmatch(runs.SEGMENT, run["noise_slug"])


def test_inputs_of_other_runs():
    run = {"study": "s", "inputs": {"init": "mlp1/none/sgd-lr0.1-m0-wd0-bs128/seed0/model.pt"}}
    assert runs.input_paths(run) == {
        "init": "results/s/runs/mlp1/none/sgd-lr0.1-m0-wd0-bs128/seed0/model.pt"
    }
    assert runs.input_paths({"study": "s"}) == {}
