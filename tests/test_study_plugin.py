"""A study kind of one's own, from a module outside the package (config ``study_kinds``), whose
second-stage runs consume first-stage runs' outputs: registered without editing any file of the
workflow or the library, run end to end through the snakemake CLI, then again as a no-op, and
retrained downstream when an upstream run is retrained."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from conftest import copy_workflow, planned_jobs, snakemake

from corruptlab.core.config import ConfigError, expand_runs, validate_config

TOY_KIND = '''
"""A toy two-stage study kind: every run of the grid trains as usual (stage 1); then a stage-2
run per stage-1 run starts from that run's trained weights and trains on for a few epochs."""

from corruptlab.core import runs
from corruptlab.report.claims import claims_table, exact
from corruptlab.report.tables import summary
from corruptlab.studies import Output, StudyKind, register


def stages(tables, study):
    """Per stage-2 run: the validation accuracy it starts from (its epoch 0) and the best of
    the stage-1 run it consumed."""
    h, r = tables["histories"], tables["runs"]
    best = r.drop_duplicates("run_id").set_index("run_id")["best_val_accuracy"]
    out = []
    for run_id, inputs in r.dropna(subset=["inputs"]).drop_duplicates("run_id")[
        ["run_id", "inputs"]
    ].itertuples(index=False):
        upstream = inputs.removeprefix("init=").rsplit("/", 1)[0]
        start = h[(h["run_id"] == run_id) & (h["epoch"] == 0)]["val_accuracy"].iloc[0]
        out.append({"run_id": run_id, "upstream": upstream, "start": start,
                    "upstream_best": best[upstream], "final": best[run_id]})
    import pandas as pd

    return pd.DataFrame(out)


def starts_where_stage_one_ended(tables, study):
    s = tables["stages"]
    gap = (s["start"] - s["upstream_best"]).abs().max()
    return [exact("stage 2 starts from stage 1's weights", "all", float(gap),
                  "max |start - upstream best| == 0", bool(gap == 0))]


class TwoStage(StudyKind):
    name = "two_stage"
    doc = "a toy: stage-2 runs fine-tune stage-1 runs"
    schema = {"stage2_epochs": {"type": "integer", "minimum": 1, "default": 1}}
    tables = {
        "summary": Output(summary, ("runs",)),
        "stages": Output(stages, ("runs", "histories")),
        "claims": Output(claims_table, ("runs", "stages")),
    }
    claims = (starts_where_stage_one_ended,)

    def expand(self, name, study, config):
        first = super().expand(name, study, config)
        second = []
        for run in first:
            config_id, seed = runs.split_run_id(run["run_id"])
            epochs = study["stage2_epochs"]
            second.append({
                **run, "max_epochs": epochs, "patience": epochs,
                "run_id": runs.run_id(runs.config_id(config_id, "stage2"), seed),
                "inputs": {"init": f"{run['run_id']}/model.pt"},
            })
        return first + second


register(TwoStage())
'''

STUDY = {
    "kind": "two_stage",
    "dataset": "mnist5k",
    "models": ["perceptron"],
    "noise": [{"kind": "none"}],
    "optimizers": [{"name": "sgd", "lr": [0.05]}],
    "max_epochs": 1,
    "patience": 1,
    "seeds": 2,
    "stage2_epochs": 2,
}
STAGE1 = "perceptron/none/sgd-lr0.05-m0-wd0-bs128"


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    wd = copy_workflow(tmp_path_factory.mktemp("toy"))
    (wd / "toy_kind.py").write_text(TOY_KIND)
    config = {"study_kinds": ["toy_kind.py"], "studies": {"toy": STUDY}}
    (wd / "toy.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(wd, "--configfile", "toy.yaml")
    return wd, result.stdout


@pytest.mark.e2e
def test_a_kind_from_a_module_of_ones_own_runs_end_to_end(toy):
    wd, log = toy
    jobs = planned_jobs(log)
    assert jobs["train"] == 4 and jobs["evaluate"] == 4  # 2 seeds x 2 stages
    tables = wd / "results/toy/tables"
    runs = pd.read_parquet(tables / "runs.parquet")
    assert len(runs) == 4
    stage2 = runs[runs["run_id"].str.contains("/stage2/")]
    assert stage2["inputs"].tolist() == [
        f"init={STAGE1}/seed{s}/model.pt" for s in (0, 1)
    ]  # provenance: the run each consumed
    assert runs[~runs["run_id"].str.contains("/stage2/")]["inputs"].isna().all()
    stages = pd.read_parquet(tables / "stages.parquet")
    # a stage-2 run starts exactly where its stage-1 run's best weights were
    assert len(stages) == 2 and (stages["start"] == stages["upstream_best"]).all()
    assert (stages["start"] > 0.5).all()  # far above chance (0.1): the weights were trained
    claims = pd.read_parquet(tables / "claims.parquet")
    assert claims["verdict"].tolist() == ["supported"]
    record = json.loads((wd / f"results/toy/runs/{STAGE1}/stage2/seed1/run.json").read_text())
    assert record["run"]["inputs"] == {"init": f"{STAGE1}/seed1/model.pt"}
    assert record["epochs_trained"] == 2
    assert (
        "starts from the weights of"
        in (wd / f"results/toy/runs/{STAGE1}/stage2/seed1/train.log").read_text()
    )


@pytest.mark.e2e
def test_a_rerun_does_nothing_and_retraining_upstream_retrains_downstream(toy):
    wd, _ = toy
    out = snakemake(wd, "-n", "--configfile", "toy.yaml").stdout
    assert planned_jobs(out) == {}
    # retraining a stage-1 run retrains the stage-2 run that consumes it, and no other
    upstream = f"results/toy/runs/{STAGE1}/seed0/model.pt"
    out = snakemake(wd, "-n", "--configfile", "toy.yaml", "--forcerun", upstream).stdout
    jobs = planned_jobs(out)
    assert jobs["train"] == 2 and jobs["evaluate"] == 2, jobs
    assert f"results/toy/runs/{STAGE1}/stage2/seed0/model.pt" in out
    assert f"results/toy/runs/{STAGE1}/stage2/seed1/model.pt" not in out


def test_a_kind_module_that_cannot_be_loaded_is_a_config_error(tmp_path):
    broken = tmp_path / "broken_kind.py"
    broken.write_text("import no_such_package\n")
    config = {"study_kinds": [str(broken), "no.such.module"], "studies": {}}
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    message = str(err.value)
    assert f"study_kinds[0]: cannot load '{broken}' (ModuleNotFoundError" in message
    assert "study_kinds[1]: cannot load 'no.such.module'" in message
    assert "accepted: an importable module name or a path to a .py file" in message


def test_the_toy_kind_checks_its_own_keys_and_expands_its_stages(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "toy_kind.py").write_text(TOY_KIND)
    config = {"study_kinds": ["toy_kind.py"], "studies": {"toy": {**STUDY, "stage2_epochs": 0}}}
    with pytest.raises(ConfigError, match=r"toy\.stage2_epochs: got 0; accepted: an integer >= 1"):
        validate_config(config)
    config = validate_config({"study_kinds": ["toy_kind.py"], "studies": {"toy": STUDY}})
    runs = expand_runs("toy", config["studies"]["toy"], config)
    assert [r["run_id"] for r in runs] == [
        f"{STAGE1}/seed0",
        f"{STAGE1}/seed1",
        f"{STAGE1}/stage2/seed0",
        f"{STAGE1}/stage2/seed1",
    ]
    assert runs[2]["inputs"] == {"init": f"{STAGE1}/seed0/model.pt"}
    with pytest.raises(ConfigError, match="'stage2_epochs' is a key of study kind 'two_stage'"):
        validate_config(
            {
                "study_kinds": ["toy_kind.py"],
                "studies": {"x": {**STUDY, "kind": "label_noise"}},
            }
        )
