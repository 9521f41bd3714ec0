"""End to end: the snakemake CLI on a tiny label-noise study in a temporary copy of the workflow.

One module-scoped run trains 8 small jobs (about a minute on 2 cores); the tests then check its
tables and figures, that a rerun does nothing, and that editing one library module replans
exactly the rules that depend on it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import copy_workflow, planned_jobs, snakemake

from corruptlab.report.claims import VERDICTS

pytestmark = pytest.mark.e2e

TINY = {
    "studies": {
        "tiny": {
            "kind": "label_noise",
            "dataset": "mnist5k",
            "models": ["perceptron", "mlp1"],
            "noise": [{"kind": "none"}, {"kind": "uniform", "alpha": [1]}],
            "optimizers": [{"name": "adadelta", "lr": [1.0]}],
            "max_epochs": 2,
            "patience": 1,
            "seeds": 2,
        }
    }
}
N_RUNS = 2 * 2 * 1 * 2
SHIFT = {
    "kind": "corruption_tta",
    "dataset": "mnist5k",
    "models": ["mlp_bn"],
    "noise": [{"kind": "none"}],
    "optimizers": [{"name": "adam", "lr": [0.001]}],
    "max_epochs": 1,
    "patience": 1,
    "seeds": 2,
    "evaluation": {
        "corruptions": ["gaussian_noise"],
        "severities": [5],
        "methods": [{"name": "source"}, {"name": "norm"}, {"name": "tent", "lr": [0.001]}],
    },
}
TINY["studies"]["shift"] = SHIFT
DETECT = {  # OOD detection by a perceptron trained on the digits 0-4
    "kind": "ood",
    "dataset": "mnist5k",
    "models": ["perceptron"],
    "in_classes": [0, 1, 2, 3, 4],
    "noise": [{"kind": "none"}],
    "optimizers": [{"name": "adadelta", "lr": [1.0]}],
    "max_epochs": 1,
    "patience": 1,
    "seeds": 2,
    "ood": {"synthetic": ["uniform_noise"], "corruptions": ["gaussian_noise"]},  # shift's s5
}
TINY["studies"]["detect"] = DETECT
# what follows an edit of the aggregation code: every study's tables and figures
TABLES_AND_FIGURES = {
    "runs_table": 3,
    "predictions_table": 1,
    "ood_runs_table": 1,
    "table": 3 + 4 + 3,
    "figure": 1 + 4 + 2,  # tiny has one lr: no selected_lr_vs_alpha
    "study_page": 3,  # each study's page shows its tables and figures
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    wd = copy_workflow(tmp_path_factory.mktemp("wf"))
    (wd / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    result = snakemake(wd, "--configfile", "tiny.yaml")
    wd.joinpath("first_run.log").write_text(result.stdout)
    return wd


def test_tables_are_tidy_with_provenance(workdir):
    tables = workdir / "results" / "tiny" / "tables"
    runs = pd.read_parquet(tables / "runs.parquet")
    assert len(runs) == N_RUNS  # one row per (run, condition); only "clean" so far
    assert runs["run_id"].is_unique and set(runs["condition"]) == {"clean"}
    for col in [
        "model",
        "noise_kind",
        "alpha",
        "optimizer",
        "lr",
        "batch_size",
        "seed",
        "status",
        "best_epoch",
        "accuracy",
        "nll",
        "entropy",
        "ece",
        "corruptlab_version",
        "git_commit",
        "torch_version",
        "device",
    ]:
        assert col in runs, col
    assert runs["accuracy"].between(0, 1).all() and (runs["status"] == "ok").all()
    assert set(runs["device"]) == {"cpu"}
    assert runs["accuracy"].min() > 0.5  # mnist5k, 2 epochs: far above chance (0.1)

    summary = pd.read_parquet(tables / "summary.parquet")
    acc = summary[summary["metric"] == "accuracy"]
    assert len(acc) == N_RUNS // 2 and (acc["n"] == 2).all()
    assert (acc["ci95_low"] <= acc["mean"]).all() and (acc["mean"] <= acc["ci95_high"]).all()
    one = acc[(acc["model"] == "mlp1") & (acc["noise_kind"] == "none")].iloc[0]
    seeds = runs[(runs["model"] == "mlp1") & (runs["noise_kind"] == "none")]["accuracy"]
    assert one["mean"] == pytest.approx(seeds.mean())

    selection = pd.read_parquet(tables / "selection.parquet")
    assert len(selection) == 4 and set(selection["alpha_axis"]) == {0.0, 1.0}

    claims = pd.read_parquet(tables / "claims.parquet")
    assert set(claims["verdict"]) <= set(VERDICTS)
    assert {"value", "ci95_low", "ci95_high", "criterion", "git_commit"} <= set(claims.columns)
    conv = claims[claims["claim"].str.startswith("conv4 above 90%")]
    assert conv["verdict"].tolist() == ["not applicable"]
    log = (workdir / "first_run.log").read_text()
    assert "Claims of study tiny" in log
    # the end of the run: verdict counts per study and where the table is
    assert "Claims checked on this run's numbers" in log
    assert "  tiny: " in log and "results/tiny/tables/claims.parquet" in log
    assert "results/<study>/<study>.html" in log and "--report report.html" in log


def test_run_outputs_and_figures_exist(workdir):
    study = workdir / "results" / "tiny"
    for ext in ("png", "pdf"):
        path = study / "figures" / f"accuracy_vs_alpha.{ext}"
        assert path.stat().st_size > 5000, path
    # one lr in the grid: no lr was selected, so no figure of the selected lrs; no flip noise:
    # no accuracy_vs_p (figures whose data would be empty are not drawn)
    assert sorted(p.name for p in (study / "figures").iterdir()) == [
        "accuracy_vs_alpha.pdf",
        "accuracy_vs_alpha.png",
    ]
    run_dir = study / "runs" / "mlp1" / "uniform-a1" / "adadelta-lr1-wd0-bs128" / "seed1"
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "ok" and record["n_train_examples"] == 2 * 3500
    assert record["provenance"]["torch_version"]
    history = pd.read_parquet(run_dir / "history.parquet")
    assert history["epoch"].tolist() == [0, 1, 2]
    preds = pd.read_parquet(run_dir / "predictions.parquet")
    assert len(preds) == 1000 and {"pred", "correct", "label"} <= set(preds.columns)
    assert not (run_dir / "checkpoint.pt").exists()
    assert (run_dir / "train.benchmark.tsv").exists() and (run_dir / "train.log").exists()
    assert not list(study.rglob("*.part"))


def test_shift_study_tables_and_figures(workdir):
    study = workdir / "results" / "shift"
    runs = pd.read_parquet(study / "tables" / "runs.parquet")
    assert len(runs) == 2 * 2 * 3  # 2 runs x (clean, gaussian_noise s5) x (source, norm, tent)
    assert set(runs["method"]) == {"source", "norm", "tent"}
    assert set(zip(runs["condition"], runs["severity"], strict=True)) == {
        ("clean", 0),
        ("gaussian_noise", 5),
    }
    noisy = runs[runs["condition"] == "gaussian_noise"].set_index(["seed", "method"])
    assert noisy["accuracy"].between(0, 1).all()
    errors = pd.read_parquet(study / "tables" / "corruption_errors.parquet")
    assert {"gaussian_noise", "mean"} <= set(errors["condition"])
    claims = pd.read_parquet(study / "tables" / "claims.parquet")
    assert set(claims["verdict"]) <= set(VERDICTS)
    # the sanity claim (norm and tent on a shuffled stream keep the clean accuracy), the paper's
    # claim at severity 5, and entropy vs error (mean over sets, and the one set)
    assert claims["claim"].value_counts().tolist() == [2, 2, 2]
    kept = claims[claims["claim"].str.startswith("norm and tent keep the clean accuracy")]
    assert kept["subject"].str.endswith("-shuffled").all() and (kept["n"] == 2).all()
    assert set(runs["tta_stream"].dropna()) == {"shuffled"}
    assert runs.groupby("method")["method_order"].first().to_dict() == {
        "source": 0,
        "norm": 1,
        "tent": 2,
    }
    for name in (
        "corruption_gallery",
        "error_by_entropy_decile",
        "loss_entropy_by_severity",
        "error_by_corruption",
        "tent_grid",
    ):
        assert (study / "figures" / f"{name}.png").stat().st_size > 5000, name
    assert (workdir / "resources/datasets/mnist5k/testsets/gaussian_noise/s5.pt").exists()


def test_ood_study_tables_and_figures(workdir):
    study = workdir / "results" / "detect"
    ood = pd.read_parquet(study / "tables" / "ood_runs.parquet")
    sets = ["gaussian_noise_s5", "held_out_classes", "uniform_noise"]
    scores = ["energy", "entropy", "max_logit", "msp"]
    assert len(ood) == 2 * len(sets) * len(scores)  # seeds x OOD sets x scores
    assert sorted(set(ood["ood_set"])) == sets and sorted(set(ood["score"])) == scores
    assert (ood["in_classes"] == "0,1,2,3,4").all() and ood["git_commit"].notna().all()
    held = ood[ood["ood_set"] == "held_out_classes"]
    # mnist5k's 1,000 test digits: those of 0-4 are in-distribution, the others OOD
    assert (held["n_in"] + held["n_out"] == 1000).all()
    assert ood["auroc"].between(0, 1).all() and (ood["roc_tpr"].map(len) == 101).all()
    runs = pd.read_parquet(study / "tables" / "runs.parquet")
    acc = runs.set_index("seed")["accuracy"]
    assert ood.groupby("seed")["in_accuracy"].first().to_dict() == pytest.approx(acc.to_dict())
    metrics = pd.read_parquet(study / "tables" / "ood_metrics.parquet")
    assert len(metrics) == len(sets) * len(scores) * 4 and (metrics["n"] == 2).all()
    claims = pd.read_parquet(study / "tables" / "claims.parquet")
    assert len(claims) == 1 + 1 + len(sets)
    assert set(claims["verdict"]) <= {"supported", "contradicted", "inconclusive"}
    for name in ("roc_curves", "ood_auroc"):
        assert (study / "figures" / f"{name}.png").stat().st_size > 5000, name


def test_a_second_run_does_nothing(workdir):
    out = snakemake(workdir, "-n", "--configfile", "tiny.yaml").stdout
    assert "Nothing to be done" in out and planned_jobs(out) == {}


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        # the label-noise study alone (its tables.py: the fingerprint follows kind.py's imports)
        ("studies/label_noise/tables", {"table": 3, "figure": 1, "study_page": 1}),
        # every study kind's module uses the claims machinery: their tables and figures (the
        # gallery too), not the per-run tables
        ("report/claims", {"table": 3 + 4 + 3, "figure": 1 + 5 + 2, "study_page": 3}),
        ("eval/evaluation", {"evaluate": N_RUNS + 4, "ood": 2, **TABLES_AND_FIGURES}),
        # the OOD scores, and the ood kind's tables (its module names the OOD sets and scores)
        ("eval/ood", {"ood": 2, "ood_runs_table": 1, "table": 3, "figure": 2, "study_page": 1}),
        (
            "train/training",
            {"train": N_RUNS + 4, "evaluate": N_RUNS + 4, "ood": 2, **TABLES_AND_FIGURES},
        ),
        (
            "data/noise",
            {
                "labels": 4 + 2 + 2,
                "train": N_RUNS + 4,
                "evaluate": N_RUNS + 4,
                "ood": 2,
                **TABLES_AND_FIGURES,
                "figure": 7 + 1,  # the gallery's kind module uses the tables' noise columns
            },
        ),
        (  # the shared test set, the evaluations and OOD scores reading it and what follows
            "data/corruptions",
            {
                "testset": 1,
                "evaluate": 2,
                "ood": 2,
                "runs_table": 1,
                "predictions_table": 1,
                "ood_runs_table": 1,
                "table": 4 + 3,  # the ood kind's module checks corruption names
                "figure": 4 + 2 + 1,  # and the gallery
                "study_page": 2,
            },
        ),
    ],
)
def test_editing_a_module_replans_exactly_what_depends_on_it(workdir, module, expected):
    path = workdir / "src" / "corruptlab" / f"{module}.py"
    original = path.read_text()
    path.write_text(original + "\n# an edit\n")
    try:
        out = snakemake(workdir, "-n", "--configfile", "tiny.yaml").stdout
    finally:
        path.write_text(original)
    assert planned_jobs(out) == {**expected, "all": 1}


def test_changing_a_hyper_parameter_reruns_only_affected_runs(workdir):
    changed = json.loads(json.dumps(TINY))
    changed["studies"]["tiny"]["models"] = ["perceptron", "mlp1"]
    changed["studies"]["tiny"]["noise"][1]["alpha"] = [1, 2]  # adds runs, keeps the old ones
    (workdir / "changed.yaml").write_text(yaml.safe_dump(changed))
    out = snakemake(workdir, "-n", "--configfile", "changed.yaml").stdout
    jobs = planned_jobs(out)
    assert jobs["train"] == 4 and jobs["evaluate"] == 4 and jobs["labels"] == 2


def test_an_lr_schedule_adds_runs_of_its_own_and_a_constant_one_changes_nothing(workdir):
    constant = json.loads(json.dumps(TINY))
    constant["studies"]["tiny"]["optimizers"][0]["schedule"] = {"name": "constant"}
    constant["studies"]["tiny"]["objective"] = {"name": "cross_entropy"}
    (workdir / "constant.yaml").write_text(yaml.safe_dump(constant))
    out = snakemake(workdir, "-n", "--configfile", "constant.yaml").stdout
    # the same runs: nothing to label, train or evaluate again (the derived tables' jobs take the
    # study's config as a param, so its new keys replan them and the figures drawn from them)
    assert set(planned_jobs(out)) <= {"table", "figure", "study_page", "all"}
    assert "mlp1/none/adadelta-lr1-wd0-bs128/seed0" not in out
    step = json.loads(json.dumps(TINY))
    step["studies"]["tiny"]["optimizers"].append(
        {"name": "adadelta", "lr": 1.0, "schedule": {"name": "step", "gamma": 0.7}}
    )
    (workdir / "step.yaml").write_text(yaml.safe_dump(step))
    out = snakemake(workdir, "-n", "--configfile", "step.yaml").stdout
    jobs = planned_jobs(out)
    assert jobs["train"] == N_RUNS == jobs["evaluate"] and "labels" not in jobs
    assert "results/tiny/runs/mlp1/none/adadelta-lr1-wd0-step-g0.7-bs128/seed0/model.pt" in out


def test_a_bad_config_fails_before_any_job(tmp_path):
    wd = copy_workflow(tmp_path)
    bad = json.loads(json.dumps(TINY))
    bad["studies"]["tiny"]["models"] = ["mlp1", "resnet"]
    bad["studies"]["tiny"]["max_epochs"] = 0
    (wd / "bad.yaml").write_text(yaml.safe_dump(bad))
    result = snakemake(wd, "--configfile", "bad.yaml", check=False)
    assert result.returncode != 0
    assert "studies.tiny.models[1]: unknown model 'resnet'; accepted: perceptron" in result.stdout
    assert "studies.tiny.max_epochs" in result.stdout
    assert not (wd / "results").exists() and not (wd / "resources").exists()


def test_each_study_is_a_target_of_its_name(tmp_path):
    """`snakemake <study>` plans that study's runs, tables, figures and page, and nothing of the
    other studies; the targets are listed by --list-target-rules."""
    wd = copy_workflow(tmp_path)
    (wd / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    out = snakemake(wd, "-n", "detect", "--configfile", "tiny.yaml").stdout
    jobs = planned_jobs(out)
    assert jobs["detect"] == 1 and "all" not in jobs and "tiny" not in jobs
    assert jobs["train"] == 2 == jobs["ood"]  # detect's perceptron, two seeds
    assert jobs["figure"] == 2 and jobs["study_page"] == 1  # roc_curves, ood_auroc
    assert "results/detect/detect.html" in out
    assert "results/tiny/" not in out and "results/shift/" not in out
    listed = snakemake(wd, "--list-target-rules", "--configfile", "tiny.yaml").stdout
    targets = {line.split()[0] for line in listed.splitlines() if line and line[0].isalpha()}
    assert {"all", "tiny", "shift", "detect"} <= targets
    assert "tiny (Study tiny (label_noise): its tables, figures and page)" in listed


def test_a_study_named_like_a_rule_is_a_config_error(tmp_path):
    wd = copy_workflow(tmp_path)
    clash = {"studies": {"all": TINY["studies"]["tiny"], "train": SHIFT}}
    (wd / "clash.yaml").write_text(yaml.safe_dump(clash))
    result = snakemake(wd, "-n", "--configfile", "clash.yaml", check=False)
    assert result.returncode != 0
    for study in ("all", "train"):
        assert f"studies.{study}: the name '{study}' is taken by a rule" in result.stdout
    assert "rename the study" in result.stdout
    assert "WorkflowError" not in result.stdout and "Traceback" not in result.stdout
    assert not (wd / "results").exists()


def test_the_full_corruption_and_ood_studies_plan_their_grids(tmp_path):
    wd = copy_workflow(tmp_path)
    out = snakemake(wd, "-n", "--configfile", "config/studies/corruption_tta.yaml").stdout
    jobs = planned_jobs(out)
    assert jobs["train"] == 2 * 5 == jobs["evaluate"]  # conv4_bn and mlp_bn, five seeds
    assert jobs["testset"] == 20 * 5 and jobs["download"] == 1
    out = snakemake(wd, "-n", "--configfile", "config/studies/ood.yaml").stdout
    jobs = planned_jobs(out)
    assert jobs["train"] == 2 * 2 * 5 == jobs["ood"]  # two studies x two models x five seeds
    assert jobs["download"] == 3  # mnist, fashion-mnist, kmnist
    assert jobs["testset"] == 15 and jobs["ood_runs_table"] == 2


def test_the_full_label_noise_study_plans_its_grid(tmp_path):
    wd = copy_workflow(tmp_path)
    out = snakemake(wd, "-n", "--configfile", "config/studies/label_noise.yaml").stdout
    jobs = planned_jobs(out)
    assert jobs["train"] == 5 * 13 * 5 * 5 == jobs["evaluate"]
    assert jobs["download"] == 1 and jobs["labels"] == 13 * 5


def test_every_aggregation_rule_runs_on_the_login_node(tmp_path):
    """Tables and figures are local rules: under a cluster executor (SLURM) they run in the
    Snakemake process instead of waiting in the queue. Every rule of aggregate.smk, as Snakemake
    reads the workflow (a Snakefile that includes it prints the local rules it declared)."""
    wd = copy_workflow(tmp_path)
    source = (wd / "workflow/rules/aggregate.smk").read_text()
    aggregation = set(re.findall(r"^rule (\w+):", source, flags=re.M))
    assert {"runs_table", "histories_table", "predictions_table", "table", "figure"} <= aggregation
    (wd / "Locals.smk").write_text(
        'include: "Snakefile"\n\n\nprint("LOCAL RULES:", *sorted(workflow._localrules))\n'
    )
    out = snakemake(wd, "-n", "--snakefile", "Locals.smk").stdout
    (line,) = [line for line in out.splitlines() if line.startswith("LOCAL RULES:")]
    local = set(line.split()[2:])
    assert {"all", "download"} <= local  # the downloads need the login node's internet
    assert sorted(aggregation - local) == []
    assert not {r for r in local if r.startswith(("train", "evaluate", "labels"))}


def test_tables_equal_the_golden_tables(workdir):
    """Every table of the three studies, value for value as committed in tests/golden/."""
    from golden import check_tables

    results = workdir / "results"
    check_tables(results / "tiny" / "tables", "tiny", ["runs", "summary", "selection", "claims"])
    shift = ["runs", "summary", "corruption_errors", "predictions", "entropy_deciles", "claims"]
    check_tables(results / "shift" / "tables", "shift", shift)
    detect = ["runs", "summary", "ood_runs", "ood_metrics", "claims"]
    check_tables(results / "detect" / "tables", "detect", detect)


def test_every_job_ran_only_modules_its_code_fingerprint_covers(workdir):
    """Each job logs the corruptlab modules it loaded; the rule's fingerprint (derived from its
    script's imports) must cover them all, or an edit to one would not rerun the job."""
    import re

    from corruptlab.core import fingerprint as fp
    from corruptlab.core.logs import MODULES_LINE

    checked = set()
    for log in [*workdir.glob("results/**/*.log"), *workdir.glob("resources/**/*.log")]:
        for line in log.read_text().splitlines():
            if MODULES_LINE not in line:
                continue
            main, loaded = line.split(MODULES_LINE, 1)[1].rsplit(": ", 1)
            # scripts/<name>.py (or a copy of it named .snakemake/scripts/tmp<x>.<name>.py)
            name = re.fullmatch(r"(?:tmp[^.]+\.)?([a-z_]+)\.py", Path(main.strip()).name).group(1)
            covered = set(fp.script_modules(workdir / "scripts" / f"{name}.py"))
            # these also load their study's kind module
            if name in ("table", "figure", "study_page"):
                kind = TINY["studies"][log.relative_to(workdir / "results").parts[0]]["kind"]
                covered |= set(fp.reached_modules(f"import corruptlab.studies.{kind}"))
            ran = {m.removeprefix("corruptlab").removeprefix(".") for m in loaded.split()}
            assert ran <= covered, f"{name}.py ran {sorted(ran - covered)} outside its fingerprint"
            checked.add(name)
    # every kind of job of the three studies was checked
    assert {"prepare", "labels", "train", "evaluate", "ood", "testset", "table"} <= checked
    assert {"figure", "runs_table", "ood_runs_table", "predictions_table", "study_page"} <= checked
