"""The reproductions (config/reproductions/) and their ledger (docs/reproductions.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import copy_workflow, planned_jobs, snakemake

from corruptlab.core.config import validate_config
from corruptlab.reproductions import ledger, run
from corruptlab.reproductions.__main__ import main

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "config" / "reproductions").glob("*.yaml"))


def test_the_ledger_is_what_the_committed_tables_give():
    """docs/reproductions.md is generated from docs/reproductions/ alone: regenerating it from
    the committed files gives the committed page, byte for byte."""
    text = ledger.render(REPO / "docs" / "reproductions")
    assert text == (REPO / "docs" / "reproductions.md").read_text(), (
        "docs/reproductions.md is stale: uv run python -m corruptlab.reproductions ledger"
    )


def test_every_collected_reproduction_has_its_config_and_notes():
    collected = sorted(
        p.parent.name for p in (REPO / "docs/reproductions").glob("*/provenance.json")
    )
    assert collected, "no reproduction collected"
    for name in collected:
        here = REPO / "docs/reproductions" / name
        assert (here / "config.yaml").read_text() == (
            REPO / "config/reproductions" / f"{name}.yaml"
        ).read_text(), f"{name}: the config ran differs from the committed one: run it again"
        assert (here / "notes.md").is_file(), f"{name}: gaps to the paper not written down"
        provenance = json.loads((here / "provenance.json").read_text())
        assert provenance["wall_seconds"] > 0
        assert len(provenance["commit"]) >= 40


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_reproduction_config_is_valid_and_says_how_it_differs(path):
    config = yaml.safe_load(path.read_text())
    validate_config(config)
    assert path.stem in config["studies"]
    assert all(s == path.stem or s.startswith(path.stem + "_") for s in config["studies"])
    for study in config["studies"].values():
        assert study["dataset"] == "mnist"
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# Reproduction: ")
    assert "# Differs from the paper, and why:" in lines
    assert f"#   uv run python -m corruptlab.reproductions run {path.stem}" in lines


def test_list_names_every_reproduction_config(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["list"]) == 0
    assert capsys.readouterr().out.split() == [p.stem for p in CONFIGS]
    assert len(CONFIGS) >= 7  # the seven papers of the README


@pytest.mark.e2e
def test_every_reproduction_plans_on_the_real_mnist(tmp_path):
    """All reproduction configs at once (Snakemake merges their studies): one plan, offline (the
    download is a planned job), with every study's training jobs."""
    wd = copy_workflow(tmp_path)
    args = ["-n", "--configfile", *[f"config/reproductions/{p.name}" for p in CONFIGS]]
    jobs = planned_jobs(snakemake(wd, *args).stdout)
    assert jobs["download"] == 1 and jobs["prepare"] == 1  # mnist, once for every study
    assert jobs["all"] == 1
    studies = {s for p in CONFIGS for s in yaml.safe_load(p.read_text())["studies"]}
    assert jobs["study_page"] == len(studies)


def _fake_results(root: Path, study: str, big_rows: int = 0) -> None:
    tables = root / "results" / study / "tables"
    tables.mkdir(parents=True)
    claims = pd.DataFrame(
        {
            "verdict": ["supported", "inconclusive", "reported", "inconclusive"],
            "claim": ["it learns", "AUROC above 0.9", "a number", "AUROC above chance"],
            "subject": ["mlp2", "mlp2 vs noise", "mlp2", "mlp2 vs noise"],
            "value": [0.98, 0.77, 0.5, 0.77],
            "ci95_low": [0.97, 0.38, 0.4, 0.38],
            "ci95_high": [0.99, 1.0, 0.6, 1.0],
            "n": [5, 5, 5, 5],
            "paper_value": [np.nan, 0.99, np.nan, 0.99],
            "criterion": ["> 0.5", "> 0.9", "", "> 0.5"],
            "paper_source": [None, "A & B 2017, Table 2", None, "A & B 2017, Table 2"],
            "paper_differs": [None, "mnist, mlp2", None, "mnist, mlp2"],
        }
    )
    claims.to_parquet(tables / "claims.parquet")
    pd.DataFrame({"x": np.arange(10)}).to_parquet(tables / "summary.parquet")
    if big_rows:
        pd.DataFrame({"x": np.random.default_rng(0).random(big_rows)}).to_parquet(
            tables / "predictions.parquet"
        )
    figures = root / "results" / study / "figures"
    figures.mkdir(parents=True)
    (figures / "roc.png").write_bytes(b"png")
    (figures / "roc.pdf").write_bytes(b"pdf")


CONFIG = """\
# Reproduction: A & B 2017, a toy paper
#
# What the paper does, over
#   two lines.
#   uv run python -m corruptlab.reproductions run toy
# Differs from the paper, and why:
# - fewer seeds, because
#   of time.
studies:
  toy:
    kind: ood
  toy_relu:
    kind: ood
"""


@pytest.fixture
def toy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config/reproductions").mkdir(parents=True)
    (tmp_path / "config/reproductions/toy.yaml").write_text(CONFIG)
    _fake_results(tmp_path, "toy", big_rows=200_000)
    _fake_results(tmp_path, "toy_relu")
    return tmp_path


def test_collect_keeps_small_tables_png_figures_config_and_notes(toy):
    notes = toy / "docs/reproductions/toy/notes.md"
    notes.parent.mkdir(parents=True)
    notes.write_text("Scale: fewer epochs.\n")
    (toy / "docs/reproductions/toy/stale.txt").write_text("from an older collect")
    out = run.collect("toy", seconds=123.4)
    assert out == Path("docs/reproductions/toy")
    assert sorted(p.name for p in (out / "toy/tables").iterdir()) == [
        "claims.parquet",
        "summary.parquet",
    ]
    assert [p.name for p in (out / "toy/figures").iterdir()] == ["roc.png"]
    assert (out / "toy_relu/tables/claims.parquet").is_file()
    assert (out / "config.yaml").read_text() == CONFIG
    assert notes.read_text() == "Scale: fewer epochs.\n"
    assert not (out / "stale.txt").exists()
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["studies"] == ["toy", "toy_relu"]
    assert provenance["wall_seconds"] == 123.4
    assert provenance["tables_left_in_results"] == {"toy": ["predictions.parquet"], "toy_relu": []}
    assert provenance["command"] == "uv run python -m corruptlab.reproductions run toy"
    # collecting again without a run keeps the measured wall time
    run.collect("toy", seconds=None)
    assert json.loads((out / "provenance.json").read_text())["wall_seconds"] == 123.4


def test_collect_refuses_a_reproduction_that_has_not_run(toy):
    import shutil

    shutil.rmtree(toy / "results/toy_relu")
    with pytest.raises(run.ReproductionError, match=r"results/toy_relu/tables/claims.parquet"):
        run.collect("toy", seconds=1.0)
    assert not (toy / "docs/reproductions/toy").exists()


def test_unknown_reproduction_and_stray_study_names_are_refused(toy, capsys):
    assert main(["run", "nope"]) == 2
    assert "no reproduction 'nope'" in capsys.readouterr().err
    assert "accepted: toy" in str(pytest.raises(run.ReproductionError, run.config_path, "x").value)
    (toy / "config/reproductions/toy.yaml").write_text(CONFIG.replace("toy_relu:", "other:"))
    with pytest.raises(run.ReproductionError, match=r"named toy_<what differs>; it has"):
        run.studies_of("toy")


def test_the_ledger_section_sets_paper_numbers_beside_ours(toy):
    run.collect("toy", seconds=754.0)
    text = ledger.render(Path("docs/reproductions"))
    assert "## A & B 2017, a toy paper" in text
    assert (
        "| [A & B 2017](#a--b-2017-a-toy-paper) | 1 supported, 2 inconclusive, 1 reported | 1 |"
        in text
    )
    assert "13 min on" in text
    # the header's continuation lines joined, the run line left out
    assert "What the paper does, over two lines." in text
    assert (
        "two lines.\n\n*Differs from the paper, and why:*\n- fewer seeds, because of time." in text
    )
    assert "uv run python -m corruptlab.reproductions run toy`" in text
    row = "| AUROC above 0.9 | mlp2 vs noise | > 0.9 | 0.770 [0.380, 1.000] (n = 5) | 0.990 |"
    assert row in text
    # the number a second claim checks is set beside the paper once; that claim is listed
    assert text.count("| 0.990 |") == 2  # once per study
    listed = "| AUROC above chance | mlp2 vs noise | 0.770 [0.380, 1.000] (n = 5) | > 0.5 |"
    assert f"| inconclusive {listed}" in text
    assert "| supported | it learns | mlp2 | 0.980 [0.970, 0.990] (n = 5) | > 0.5 |" in text
    assert "Reported without a claimed direction:" in text
    assert "![toy: roc](reproductions/toy/toy/figures/roc.png)" in text
    assert "### Study `toy_relu`" in text
    assert "Not yet examined." in text
    assert "Not run here yet" not in text  # every config of the toy checkout ran
    Path("config/reproductions/later.yaml").write_text(CONFIG.replace("toy", "later"))
    text = ledger.render(Path("docs/reproductions"))
    assert "Not run here yet (their configs are in `config/reproductions/`): `later`." in text
    assert "What a GPU would add" not in text  # no estimates written
    pd.DataFrame(
        [["toy", "config/studies/ood.yaml", "ood_mnist", "CIFAR", 10, 11000000, 0.5, 0.05, "A100"]],
        columns=["paper", "config", "study", "adds", "runs", "train_examples", "cpu_hours",
                 "gpu_hours", "assumption"],
    ).to_csv("docs/reproductions/gpu_estimates.csv", index=False)  # fmt: skip
    text = ledger.render(Path("docs/reproductions"))
    assert (
        "| `config/studies/ood.yaml` · `ood_mnist` | CIFAR | 10 | 11,000,000 | 0.5 | 0.05 |" in text
    )
    assert "Assumed: A100." in text


def test_run_times_the_workflow_and_its_cpu_and_reports_a_failure(toy, monkeypatch):
    import sys

    busy = [sys.executable, "-c", "sum(range(3 * 10**7))"]
    monkeypatch.setattr(run, "command", lambda name: busy)
    seconds = run.run("toy", [])
    assert seconds > 0 and 0 < run.CPU_SECONDS["toy"] < seconds + 5
    out = run.collect("toy", seconds)
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["cpu_seconds"] == run.CPU_SECONDS["toy"]
    assert provenance["load_at_start"] == run.LOAD["toy"]
    # a second run updates the first one's results: the run from scratch keeps its time
    (toy / "results/toy/runs").mkdir()
    monkeypatch.setattr(run, "git_commit", lambda: "f" * 40)
    run.collect("toy", run.run("toy", []))
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["wall_seconds"] == round(seconds, 1) and provenance["commit"] == "f" * 40
    assert (
        provenance["last_update"]["commit"] == "f" * 40 and provenance["timed_commit"] != "f" * 40
    )
    text = ledger.render(Path("docs/reproductions"))
    assert "| timed at commit |" in text and "| last updated | at `ffffffffffff`, in " in text
    monkeypatch.setattr(run, "command", lambda name: [sys.executable, "-c", "exit(3)"])
    with pytest.raises(run.ReproductionError, match=r"failed \(exit 3\) after .* finished jobs"):
        run.run("toy", [])


def test_a_note_s_numbers_come_from_the_tables(toy):
    run.collect("toy", seconds=1.0)
    notes = Path("docs/reproductions/toy/notes.md")
    notes.write_text("Ours is {{toy_relu|mlp2 vs noise}}, the paper's 0.99; {{toy|mlp2}}.\n")
    text = ledger.render(Path("docs/reproductions"))
    assert "Ours is 0.770 [0.380, 1.000], the paper's 0.99; 0.980 [0.970, 0.990]." in text
    notes.write_text("{{toy_relu|mlp2 vs noise|AUROC above chance}}")
    assert "0.770 [0.380, 1.000]" in ledger.render(Path("docs/reproductions"))
    notes.write_text("{{toy_relu|mlp2 vs noise|AUROC below}}")
    with pytest.raises(ledger.LedgerError, match="with a claim 'AUROC below'"):
        ledger.render(Path("docs/reproductions"))
    notes.write_text("{{toy|mlp9}}")
    with pytest.raises(ledger.LedgerError, match="study 'toy' has no subject 'mlp9'"):
        ledger.render(Path("docs/reproductions"))
    notes.write_text("{{nope|mlp2}}")
    with pytest.raises(ledger.LedgerError, match="no study 'nope'"):
        ledger.render(Path("docs/reproductions"))
