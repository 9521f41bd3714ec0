"""The benchmark scripts run: each with its small-size flags prints its tables and exits 0.

The scripts are started side by side (each is mostly waiting on subprocesses, imports and
Snakemake) and then checked one by one. Timings are not asserted: they are the benchmarks' to
report, and this machine is shared.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 300
MACHINE_ROWS = [r"^\| date ", r"^\| cpu ", r"^\| cores ", r"^\| load average "]
TORCH_ROWS = [r"^\| torch ", r"^\| torch threads \(default\) "]

# script -> (its small-size flags, lines its output must contain, as regular expressions)
SCRIPTS = {
    "trainer_throughput": (
        ["--quick"],
        [
            *MACHINE_ROWS,
            *TORCH_ROWS,
            r"^\| model \| alpha \| threads \|.*\| trainer samples/s \| reference samples/s \|",
            *(rf"^\| {m}\s+\| {a}\s+\| 1\s+\|" for m in ("mlp1", "conv4") for a in (0, 5)),
            r"^\| mlp1 alpha=5, 1 thread\(s\) \| >= 5x\s+\| [0-9.]+x",
        ],
    ),
    "arithmetic_limit": (
        ["--quick"],
        [
            *MACHINE_ROWS,
            *TORCH_ROWS,
            *(
                rf"^\| 1\s+\| {name}\s+\| \d+x\d+ @ \d+x\d+\s+\| [0-9.]+\s+\|"
                for name in ("fc1 forward", "fc2 forward", "fc1 grad weight")
            ),
            r"^\| 1\s+\| GEMMs alone \(the limit\)\s+\| [0-9,]+\s+\|",
            r"^\| 1\s+\| train\(\)\s+\| [0-9,]+\s+\|",
            r"^\| 1\s+\| conv4 \| [0-9.]+\s+\| [0-9.]+\s+\| [+-][0-9.]+%",
            r"^\| conv4 loop overhead, 1 thread\(s\) \| <= 10%",
        ],
    ),
    "sweep_scale": (
        ["--quick", "--stub-scontrol"],
        [
            *MACHINE_ROWS,
            r"^\| snakemake -n \(dry run\)\s+\| [0-9.]+\s+\| [0-9,]+\s+\|",
            r"^\| snakemake \(no-op: 'Nothing to be done'\)\s+\| [0-9.]+\s+\|",
            r"^\| import torch\s+\| [0-9.]+\s+\|",
            r"^\| +training epochs \(run.json train_seconds\)\s+\| [0-9.]+\s+\|",
            r"^\| heavy packages imported by a dry run\s+\|",
            r"^\| of which the workflow adds \(not snakemake itself\)\s+\| none\s+\|",
            r"^\| dry run, 50 runs\s+\| <= 10 s\s+\|",
        ],
    ),
    "default_run": (
        ["--quick", "--stub-scontrol"],
        [
            *MACHINE_ROWS,
            r"^\| train\s+\| 1\s+\| [0-9.]+\s+\|",
            r"^\| wall time of the run\s+\| [0-9.]+ s\s+\|",
            r"^\| wall time of the second \(no-op\) run\s+\| [0-9.]+ s\s+\|",
            r"^\| default run, 2 cores\s+\| <= 300 s\s+\| [0-9.]+ s\s+\| not measured",
        ],
    ),
    "conv_layout": (
        ["--quick"],
        [
            *MACHINE_ROWS,
            *TORCH_ROWS,
            *(
                rf"^\| {m}\s+\| [0-9.]+\s+\| [0-9.]+\s+\| [0-9.]+x\s+\|"
                for m in ("conv4", "conv4_bn")
            ),
        ],
    ),
    "job_startup": (
        ["--quick"],
        [
            *MACHINE_ROWS,
            *(
                rf"^\| {re.escape(job)}\s+\| [0-9.]+\s+\| [0-9.]+\s+\| [+-][0-9.]+\s+\|"
                for job in ("train / evaluate / ood", "table", "figure", "bare interpreter")
            ),
        ],
    ),
    "optim_import": (
        ["--quick"],
        [
            *MACHINE_ROWS,
            *TORCH_ROWS,
            r"^\| no optimizer \(import torch, model, forward/backward\) \| -\s+\| [0-9.]+\s+\|",
            *(
                rf"^\| {re.escape(label)}\s+\| {name}\s+\| [0-9.]+\s+\|.*\| {dynamo}\s+\|"
                r".*\| yes\s+\|$"
                for name in ("adam", "sgd", "adadelta")
                for label, dynamo in (("torch.optim", "yes"), ("corruptlab.train.optim", "no"))
            ),
            *(rf"^\| {name}\s+\| [+-][0-9.]+\s+\| [+-][0-9.]+\s+\|$" for name in ("adam", "sgd")),
        ],
    ),
    "mask_selection": (
        ["--quick"],
        [
            *MACHINE_ROWS,
            *TORCH_ROWS,
            *(
                rf"^\| {shape}\s+\| [0-9.]+\s+\| [0-9.]+\s+\| [0-9.]+x\s+\|"
                for shape in ("300x784", "100x300")
            ),
            *(
                rf"^\| {m}\s+\| [0-9.]+\s+\| [0-9.]+\s+\| [0-9.]+x\s+\| "
                r"[0-9.]+x-[0-9.]+x\s+\| yes\s+\|"
                for m in ("edge_popup", "ticket_finder")
            ),
        ],
    ),
    "packing": (
        ["--quick"],
        [
            *MACHINE_ROWS,
            *TORCH_ROWS,
            r"^\| perceptron \| 2 \| [0-9,]+\s+\| [0-9,]+\s+\| [0-9.]+x\s+\|",
            r"^\| perceptron \| 2 \| [0-9.]+\s+\| [0-9.]+ \([0-9.]+x\)\s+\| "
            r"[0-9.]+ \([0-9.]+x\)\s+\| [0-9.]+\s+\|",
        ],
    ),
}


@pytest.fixture(scope="module")
def runs(request):
    """Start the selected scripts at once; script -> Popen (output in a pipe)."""
    wanted = {
        item.callspec.params["script"]
        for item in request.session.items
        if item.module is request.module and hasattr(item, "callspec")
    }
    procs = {
        script: subprocess.Popen(
            [sys.executable, str(REPO / "benchmarks" / f"{script}.py"), *SCRIPTS[script][0]],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for script in SCRIPTS
        if script in wanted
    }
    yield procs
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_benchmark_prints_its_tables(runs, script):
    proc = runs[script]
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"{script} took more than {TIMEOUT} s:\n{out[-3000:]}")
    assert proc.returncode == 0, f"{script} exited with {proc.returncode}:\n{out[-5000:]}"
    missing = [p for p in SCRIPTS[script][1] if not re.search(p, out, re.MULTILINE)]
    assert not missing, f"{script} did not print rows matching {missing}:\n{out[-5000:]}"


def test_a_failing_benchmark_exits_nonzero():
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "trainer_throughput.py"), "--models", "nope"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode != 0
    assert "unknown model 'nope'" in proc.stderr


TINY_STUDY = """\
device: auto
threads: 1
data:
  mirrors: []
  split_seed: 0
studies:
  tiny:
    kind: label_noise
    dataset: mnist
    models: [perceptron]
    noise:
      - kind: uniform
        alpha: [4]
    optimizers:
      - name: adadelta
        lr: [1.0]
    batch_size: 128
    max_epochs: 3
    seeds: 2
"""


def test_full_studies_counts_the_work(tmp_path):
    """full_studies.py on a synthetic config and on label_noise.yaml, one timing per piece of
    work: the work counted by hand, and the CSV --write makes."""
    import csv

    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_STUDY)
    out_csv = tmp_path / "estimates.csv"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "full_studies.py"), "--quick"]
        + ["--configs", str(config), "config/studies/label_noise.yaml", "--write", str(out_csv)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    out = proc.stdout
    assert proc.returncode == 0, f"exited with {proc.returncode}:\n{out[-5000:]}{proc.stderr}"
    # 2 seeds x 3 epochs x 55,000 training digits x (1 + alpha = 4) noisy copies
    train = 2 * 3 * 55_000 * (1 + 4)
    # 2 runs x (validation of 5,000 at initialisation and after each of 3 epochs + the test set)
    evaluation = 2 * ((3 + 1) * 5_000 + 10_000)
    # label_noise.yaml: 5 models x 5 lrs x 5 seeds x 100 epochs x 55,000 x sum of (1 + alpha)
    alphas = [0, 1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    rolnick = 5 * 5 * 5 * 100 * 55_000 * sum(1 + a for a in alphas)
    expected = [
        *MACHINE_ROWS,
        *TORCH_ROWS,
        r"^\| GPU assumption\s+\| .*TFLOP/s.* us per aten operator",
        r"^\| perceptron\s+\| mnist\s+\| step\s+\| adadelta",
        rf"^\| tiny\s+\| 2\s+\| {train:,}\s+\| [0-9.e+-]+\s+\| [0-9.e+-]+\s+\| {evaluation:,}\s+\|",
        rf"^\| label_noise\s+\| 1,625\s+\| {rolnick:,}\s+\|",
        r"^\| label_noise\s+\| conv4 uniform-a100\s+\| 25\s+\| 13,887,500,000\s+\|",
        r"^- GPU hours: ",
    ]
    missing = [p for p in expected if not re.search(p, out, re.MULTILINE)]
    assert not missing, f"did not print rows matching {missing}:\n{out[-5000:]}"
    rows = {row["study"]: row for row in csv.DictReader(out_csv.open())}
    assert list(rows) == ["tiny", "label_noise"]
    assert rows["tiny"]["runs"] == "2" and rows["tiny"]["train_examples"] == str(train)
    assert rows["label_noise"]["paper"] == "rolnick2017"
    assert rows["label_noise"]["train_examples"] == str(rolnick)
    assert float(rows["tiny"]["gpu_hours"]) > 0 and float(rows["tiny"]["cpu_hours"]) > 0
