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
