"""Sweep scale: Snakemake's cost on a study of 10,000 runs, and the fixed cost of one job.

In a temporary copy of the workflow, a generated label-noise study (5 models x 2 noise settings
= 10 configurations, times 1,000 seeds = 10,000 runs) with the jobs a user gets by default: the
study is large enough for ``train.seeds_per_job: auto`` to pack 10 seeds per job (1,000 training
and 1,000 evaluation jobs, 200 labels jobs, plus the dataset and the aggregation):

1. ``snakemake -n`` (the dry run a user types), then ``snakemake -n -q`` (without printing jobs);
2. every output of every job is created empty, in dependency order with increasing mtimes (the
   jobs and their files are read from the dry run's own listing), and ``snakemake`` must then
   report "Nothing to be done": the no-op run's time.

Then the fixed cost of one training job: interpreter start-up and the imports a training job
pays (each a fresh ``python -c``), one real tiny training job run through snakemake against the
seconds it spent training, and whether the Snakefile imports anything heavy (``python -X
importtime`` on a dry run, against an empty Snakefile's imports).

    uv run python benchmarks/sweep_scale.py                 # 10,000 runs; about 5-10 minutes
    uv run python benchmarks/sweep_scale.py --quick         # 50 runs (a smoke test)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _common
import yaml

TARGET_SECONDS = 10.0  # issue 14 (issue 6: 20 s): dry run and no-op run of 10,000 runs, each
MODELS = ["perceptron", "mlp1", "mlp2", "mlp4", "conv4"]
EMPTY_SNAKEFILE = "rule all:\n    input: []\n"
HEAVY = ("torch", "torchvision", "pandas", "pyarrow", "matplotlib", "scipy", "sklearn", "mlxtend")
# what scripts/train.py and corruptlab.jobs.train.train_job import
TRAIN_IMPORTS = (
    "import torch, tqdm; "
    "from corruptlab.core import devices, gpus, io, logs, provenance; "
    "from corruptlab.data import datasets, noise; "
    "from corruptlab.train import models, training; "
    "from corruptlab.jobs import train"
)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=1000, help="seeds per configuration (x10 runs)")
    p.add_argument("--repeats", type=int, default=3, help="repeats of the start-up timings")
    p.add_argument(
        "--profile", action="store_true", help="also profile the dry and no-op runs (cProfile)"
    )
    _common.add_workflow_options(p)
    p.add_argument("--quick", action="store_true", help="50 runs, one repeat (a smoke test)")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.repeats = 5, 1
    return args


def study(name: str, seeds: int, models=MODELS, alphas=(5,), max_epochs: int = 2) -> dict:
    return {
        "studies": {
            name: {
                "kind": "label_noise",
                "dataset": "mnist5k",
                "models": list(models),
                "noise": [{"kind": "none"}, {"kind": "uniform", "alpha": list(alphas)}],
                "optimizers": [{"name": "adadelta", "lr": [1.0]}],
                "max_epochs": max_epochs,
                "patience": 1,
                "seeds": seeds,
            }
        }
    }


# --------------------------------------------------------------------------- the DAG


_JOB = re.compile(r"^(?:local)?rule (\w+):$")


def jobs_of_dry_run(output: str) -> list[tuple[str, list[str], list[str]]]:
    """(rule, inputs, outputs) of every job a dry run lists."""
    jobs: list[tuple[str, list[str], list[str]]] = []
    current = None
    for line in output.splitlines():
        match = _JOB.match(line)
        if match:
            current = (match.group(1), [], [])
            jobs.append(current)
        elif current is not None and line.startswith("    "):
            key, _, value = line.strip().partition(": ")
            if key == "input":
                current[1].extend(value.split(", "))
            elif key == "output":
                current[2].extend(value.split(", "))
        elif not line.strip():
            current = None
    return jobs


def create_outputs(workdir: Path, jobs) -> tuple[int, int]:
    """Create every job's outputs, a job's strictly newer than its inputs' (depth x 10 ms, all
    newer than the workflow's scripts); returns (files, depth of the DAG)."""
    producer = {path: i for i, (_, _, outputs) in enumerate(jobs) for path in outputs}
    depth: dict[int, int] = {}

    def depth_of(i: int) -> int:
        if i not in depth:
            parents = [producer[f] for f in jobs[i][1] if f in producer]
            depth[i] = 1 + max((depth_of(p) for p in parents), default=-1)
        return depth[i]

    newest_source = max(p.stat().st_mtime for p in workdir.rglob("*") if p.is_file())
    base = max(time.time() - 1.0, newest_source + 0.01)
    files = 0
    for i, (_, _, outputs) in sorted(enumerate(jobs), key=lambda item: depth_of(item[0])):
        stamp = base + 0.01 * depth_of(i)
        for name in outputs:
            path = workdir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
            os.utime(path, (stamp, stamp))
            files += 1
    return files, 1 + max(depth.values(), default=-1)


# --------------------------------------------------------------------------- imports


def import_tree(workdir: Path, snakefile: str, configfile: str | None) -> tuple[list, str]:
    """(depth, module, cumulative seconds) of every import of a dry run, in the post-order
    ``python -X importtime`` prints them (a module after the modules it imported); and the
    dry run's output."""
    args = ["-n", "--cores", "1", "--snakefile", snakefile]
    if configfile:
        args += ["--configfile", configfile]
    cmd = [sys.executable, "-X", "importtime", "-m", "snakemake", *args]
    _, proc = _common.run(cmd, cwd=workdir, env=_common.workflow_env(workdir), timeout=300)
    tree = []
    for line in proc.stdout.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        if cumulative.strip().isdigit():
            depth = (len(name) - len(name.lstrip()) - 1) // 2
            tree.append((depth, name.strip(), int(cumulative) / 1e6))
    return tree, proc.stdout


def outermost_seconds(tree: list[tuple], packages: set[str]) -> float:
    """Import time of ``packages``, counting each import once: the cumulative times of their
    modules that no other module of ``packages`` imported."""
    total, ancestors = 0.0, []  # ancestors: (depth, package) of the enclosing imports
    for depth, name, seconds in reversed(tree):
        while ancestors and ancestors[-1][0] >= depth:
            ancestors.pop()
        package = name.split(".")[0]
        if package in packages and not any(a in packages for _, a in ancestors):
            total += seconds
        ancestors.append((depth, package))
    return total


def python_seconds(code: str, repeats: int) -> float:
    """Median wall time of ``python -c code`` in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(_common.REPO / "src")}
    times = [_common.run([sys.executable, "-c", code], env=env)[0] for _ in range(repeats)]
    return statistics.median(times)


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    args = parse_args(argv)
    n_runs = len(MODELS) * 2 * args.seeds
    tmp = Path(tempfile.mkdtemp(prefix="corruptlab-sweep-"))
    probe = _common.slurm_probe()
    if args.stub_scontrol:
        _common.stub_scontrol(tmp / "bin")
        probe = (probe[0], probe[1] + "; stubbed out for these runs (--stub-scontrol)")
    _common.print_machine(
        "Sweep scale: Snakemake on a generated study, and one job's fixed cost",
        torch_threads=False,
        extra=[
            (
                "study",
                f"{len(MODELS)} models x 2 noise settings x {args.seeds:,} seeds "
                f"= {n_runs:,} runs (label_noise, mnist5k)",
            ),
            (
                "snakemake",
                f"{sys.executable} -m snakemake (as `uv run snakemake`), "
                "profiles/default (greedy scheduler)",
            ),
            probe,
            ("workflow copied from", _common.source_description(args.commit)),
        ],
    )
    try:
        workdir = _common.copy_workflow(tmp / "wf", args.commit)
        (workdir / "sweep.yaml").write_text(yaml.safe_dump(study("sweep", args.seeds)))
        rows, targets, profiled = sweep_rows(workdir, n_runs, args.profile)
        _common.print_table(
            ["step", "seconds", "jobs", "per job (ms)", "CPU seconds (snakemake and children)"],
            rows,
            title=f"A study of {n_runs:,} runs",
        )
        if profiled:
            _common.print_table(
                ["part of the run (cumulative)", "snakemake -n", "no-op snakemake"],
                profiled,
                title="Where Snakemake's time goes (cProfile; seconds under the profiler, share)",
            )
        # a second copy: the first one's outputs (the dataset included) are empty files
        job_rows, import_rows, heavy = job_overhead(
            _common.copy_workflow(tmp / "job", args.commit), args.repeats
        )
        _common.print_table(
            ["python -c ...", "seconds (median)"],
            import_rows,
            title="Start-up of a fresh interpreter (each job's script is one)",
        )
        _common.print_table(
            ["one training job (mlp1, mnist5k, 1 epoch), run by snakemake", "seconds"],
            job_rows,
            title="Where one tiny training job's time goes",
        )
        _common.print_table(
            ["Snakefile's imports", "value"], heavy, title="What parsing the workflow imports"
        )
        _common.print_table(["target", "wanted", "measured", "verdict"], targets, "Targets")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


# parts of a snakemake run, as (label, file, function) of Snakemake's code; cumulative times
# (a part's time includes the rows indented under it; rows at one level may overlap)
PROFILE_PARTS = [
    ("parsing the Snakefile and the config", "snakemake/workflow.py", "include"),
    ("building the DAG", "snakemake/workflow.py", "_build_dag"),
    ("  matching files to rules (wildcards)", "snakemake/dag.py", "file2jobs"),
    ("  rules' input functions", "snakemake/rules.py", "apply_input_function"),
    ("  rules' params", "snakemake/rules.py", "expand_params"),
    ("  inspect.signature of a callable, at every call", "snakemake/common/__init__.py",
     "get_function_params"),
    ("  source cache: each job's script: and conda: file", "snakemake/sourcecache.py", "_cache"),
    ("  conda env specs (computed also without conda)", "snakemake/dag.py", "update_conda_envs"),
    ("  needrun: file mtimes and rerun triggers", "snakemake/dag.py", "update_needrun"),
    ("  checking for directory outputs", "snakemake/dag.py", "check_directory_outputs"),
    ("postprocessing the DAG (per-job checks; also in the above)", "snakemake/dag.py",
     "postprocess"),
    ("scheduling", "snakemake/scheduling/job_scheduler.py", "schedule"),
    ("  printing the jobs (resources evaluated)", "snakemake/executors/dryrun.py", "printjob"),
]  # fmt: skip


def profiled_snakemake(workdir: Path, out: Path, *args: str) -> dict[str, float]:
    """Run snakemake under cProfile; label -> cumulative seconds of PROFILE_PARTS, and
    "total" (times under the profiler: about twice the plain run's)."""
    import pstats

    cmd = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "snakemake", *args]
    _common.run(cmd, cwd=workdir, env=_common.workflow_env(workdir), timeout=3600)
    stats = pstats.Stats(str(out)).stats
    parts = {"total": sum(tt for _, _, tt, _, _ in stats.values())}
    for label, file, function in PROFILE_PARTS:
        matching = [
            ct
            for (f, _, fn), (_, _, _, ct, _) in stats.items()
            if fn == function and f.endswith(file)
        ]
        parts[label] = max(matching, default=0.0)
    return parts


def profile_rows(dry: dict[str, float], noop: dict[str, float]) -> list:
    def cell(parts, key):
        return f"{parts[key]:.1f} s ({parts[key] / parts['total'] * 100:.0f}%)"

    keys = ["total", *(label for label, _, _ in PROFILE_PARTS)]
    return [[key, cell(dry, key), cell(noop, key)] for key in keys]


def timed_snakemake(workdir: Path, *args: str, timeout: float = 1800):
    """``_common.snakemake``, plus the CPU seconds (user + system) of the snakemake process and
    its children: a busy machine stretches wall time more than CPU time."""

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    before = cpu()
    seconds, proc = _common.snakemake(workdir, *args, timeout=timeout)
    return seconds, cpu() - before, proc


def sweep_rows(workdir: Path, n_runs: int, profile: bool = False) -> tuple[list, list, list]:
    (workdir / "Empty.smk").write_text(EMPTY_SNAKEFILE)
    start_seconds, start_cpu, _ = timed_snakemake(
        workdir, "-n", "--cores", "2", "--snakefile", "Empty.smk"
    )
    sm = ("--cores", "2", "--configfile", "sweep.yaml")
    dry_seconds, dry_cpu, dry = timed_snakemake(workdir, "-n", *sm)
    stats = _common.job_stats(dry.stdout)
    n_jobs = stats.get("total", sum(stats.values()))
    quiet_seconds, quiet_cpu, _ = timed_snakemake(workdir, "-n", "-q", *sm)
    if profile:
        dry_parts = profiled_snakemake(workdir, workdir / "dry.prof", "-n", *sm)
    jobs = jobs_of_dry_run(dry.stdout)
    if len(jobs) != n_jobs:
        raise _common.BenchmarkError(f"read {len(jobs)} jobs of the dry run, not {n_jobs}")
    # the default packs seeds in large studies (train.seeds_per_job: auto): count the runs
    trained = [f for rule, _, out in jobs if rule.startswith("train") for f in out]
    if sum(f.endswith("/run.json") for f in trained) != n_runs:
        raise _common.BenchmarkError(f"the dry run does not train each of the {n_runs} runs")
    print(
        "jobs per rule: " + ", ".join(f"{k} {v:,}" for k, v in stats.items() if k != "total"),
        flush=True,
    )
    t0 = time.perf_counter()
    n_files, depth = create_outputs(workdir, jobs)
    create_seconds = time.perf_counter() - t0
    noop_seconds, noop_cpu, noop = timed_snakemake(workdir, *sm)
    if "Nothing to be done" not in noop.stdout:
        raise _common.BenchmarkError(
            "the no-op run did not report 'Nothing to be done':\n" + noop.stdout[-3000:]
        )
    profiled = []
    if profile:
        noop_parts = profiled_snakemake(workdir, workdir / "noop.prof", *sm)
        profiled = profile_rows(dry_parts, noop_parts)
    rows = [
        ["snakemake start-up (dry run of an empty Snakefile)", start_seconds, 0, "-", start_cpu],
        ["snakemake -n (dry run)", dry_seconds, n_jobs, dry_seconds / n_jobs * 1e3, dry_cpu],
        [
            "snakemake -n -q (dry run, jobs not printed)",
            quiet_seconds,
            n_jobs,
            quiet_seconds / n_jobs * 1e3,
            quiet_cpu,
        ],
        [
            f"create {n_files:,} output files ({depth} levels; not Snakemake)",
            create_seconds,
            n_jobs,
            "-",
            "-",
        ],
        [
            "snakemake (no-op: 'Nothing to be done')",
            noop_seconds,
            n_jobs,
            noop_seconds / n_jobs * 1e3,
            noop_cpu,
        ],
    ]
    targets = []
    for label, seconds, cpu in [
        ("dry run", dry_seconds, dry_cpu),
        ("no-op run", noop_seconds, noop_cpu),
    ]:
        targets.append(
            [
                f"{label}, {n_runs:,} runs",
                f"<= {TARGET_SECONDS:.0f} s",
                f"{seconds:.1f} s (CPU {cpu:.1f} s)",
                "met"
                if seconds <= TARGET_SECONDS
                else f"missed by {seconds / TARGET_SECONDS:.1f}x",
            ]
        )
    return rows, targets, profiled


def job_overhead(workdir: Path, repeats: int) -> tuple[list, list, list]:
    import_rows = [
        [code, python_seconds(code, repeats)]
        for code in [
            "pass",
            "import corruptlab.jobs.train",
            "import snakemake.script",
            "import torch",
            TRAIN_IMPORTS,
        ]
    ]

    # one real training job: prepare and labels first, then the train job alone, timed
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(study("tiny", 1, ["mlp1"], max_epochs=1)))
    sm = ("--cores", "1", "--configfile", "tiny.yaml")
    tree, dry = import_tree(workdir, "Snakefile", "tiny.yaml")  # also the what-is-imported check
    train = [job for job in jobs_of_dry_run(dry) if job[0] == "train"][0]
    run_json = next(f for f in train[2] if f.endswith("/run.json"))
    _common.snakemake(workdir, *train[1], *sm)  # targets first: --configfile takes a list
    wall, _ = _common.snakemake(workdir, run_json, *sm)
    record = json.loads((workdir / run_json).read_text())
    bench = workdir / run_json.replace("run.json", "train.benchmark.tsv")
    with bench.open() as f:
        process = float(next(csv.DictReader(f, delimiter="\t"))["s"])
    job, training = record["job_seconds"], record["train_seconds"]
    job_rows = [
        ["snakemake invocation, wall", wall],
        ["  the job's process (benchmark: file's s)", process],
        ["    train_job() (run.json job_seconds)", job],
        ["      training epochs (run.json train_seconds)", training],
        ["snakemake start-up, DAG, scheduling (wall - process)", wall - process],
        ["script start-up and imports (process - train_job)", process - job],
        ["loading data, model, writing outputs (train_job - epochs)", job - training],
        ["share of the wall time spent training", f"{training / wall * 100:.1f}%"],
    ]

    (workdir / "Empty.smk").write_text(EMPTY_SNAKEFILE)
    empty, _ = import_tree(workdir, "Empty.smk", None)
    snakemake_own = {name.split(".")[0] for _, name, _ in empty}
    imported = {name.split(".")[0] for _, name, _ in tree}
    added = imported - snakemake_own
    heavy_found = sorted(imported & set(HEAVY))
    heavy = [
        ["heavy packages imported by a dry run", ", ".join(heavy_found) or "none"],
        [
            "of which the workflow adds (not snakemake itself)",
            ", ".join(sorted(added & set(HEAVY))) or "none",
        ],
        ["packages the workflow adds", ", ".join(sorted(added)) or "none"],
        ["their import time (s)", f"{outermost_seconds(tree, added):.3f}"],
        ["of which corruptlab's modules (s)", f"{outermost_seconds(tree, {'corruptlab'}):.3f}"],
    ]
    return job_rows, import_rows, heavy


if __name__ == "__main__":
    try:
        sys.exit(main())
    except _common.BenchmarkError as err:
        _common.fail(str(err))
