"""Helpers shared by the benchmark scripts: the machine's description, timing, plain tables,
a temporary copy of the workflow and running the snakemake CLI in it.

Imported by the scripts as ``import _common`` (each script's own folder is on ``sys.path`` when
it is run as ``python benchmarks/<name>.py``). Importing it costs only the standard library.
"""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_PARTS = ("Snakefile", "workflow", "scripts", "src", "config", "profiles", "envs")


class BenchmarkError(RuntimeError):
    """A benchmark could not measure what it set out to (a failed run, a wrong result)."""


# --------------------------------------------------------------------------- the machine


def cpu_model() -> str:
    """The CPU's model name (corruptlab.core.provenance.cpu_model)."""
    from corruptlab.core.provenance import cpu_model as model

    return model()


def cpu_flags() -> str:
    """The vector extensions the CPU reports (those that matter to GEMM kernels)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")
                return " ".join(f for f in wanted if f in flags) or "-"
    except OSError:
        pass
    return "unknown"


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def commit_description() -> str:
    """HEAD's short hash, and whether tracked files differ from it."""
    head = _git("rev-parse", "--short", "HEAD")
    if head is None:
        return "unknown (not a git checkout)"
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return head + (" with uncommitted changes" if dirty else "")


def source_description(commit: str | None) -> str:
    """Where a benchmark's workflow copy comes from, for its machine table."""
    if not commit:
        return f"the working tree ({commit_description()})"
    return f"commit {_git('rev-parse', '--short', commit) or commit} (git archive)"


def machine(torch_threads: bool = True) -> list[tuple[str, str]]:
    """(key, value) rows describing the machine and software the figures were measured on."""
    rows = [
        ("date", datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")),
        ("cpu", f"{cpu_model()} ({cpu_flags()})"),
        ("cores", f"{os.cpu_count()} ({len(os.sched_getaffinity(0))} usable by this process)"),
        ("load average", " / ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1 / 5 / 15 min)"),
        ("python", platform.python_version()),
        ("corruptlab", commit_description()),
    ]
    if torch_threads:
        import torch

        rows += [
            ("torch", torch.__version__),
            ("torch threads (default)", str(torch.get_num_threads())),
            ("BLAS", "MKL" if torch.backends.mkl.is_available() else "not MKL"),
        ]
    try:
        from importlib.metadata import version

        rows.append(("snakemake", version("snakemake")))
    except Exception:  # noqa: BLE001 (informational only)
        pass
    return rows


def print_machine(title: str, torch_threads: bool = True, extra: Sequence = ()) -> None:
    print(f"# {title}\n")
    print_table(["machine", ""], [*machine(torch_threads), *extra])


# --------------------------------------------------------------------------- tables


def fmt(value, digits: int = 3) -> str:
    """A number with ``digits`` significant digits and thousands separators; text as is."""
    if isinstance(value, str):
        return value
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if value != value:  # NaN
        return "nan"
    if abs(value) >= 10 ** (digits - 1):
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence], title: str = "") -> None:
    """A Markdown table with padded columns (readable in a terminal, pastes into a README)."""
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    if title:
        print(f"\n## {title}\n")
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    print(flush=True)


# --------------------------------------------------------------------------- timing


def median_time(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    """Median wall time of ``fn()`` over ``repeats`` calls, and every time."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def spread(times: Sequence[float]) -> str:
    """min-max of ``times`` relative to their median, e.g. '-3%/+8%'."""
    med = statistics.median(times)
    return f"-{(1 - min(times) / med) * 100:.0f}%/+{(max(times) / med - 1) * 100:.0f}%"


# --------------------------------------------------------------------------- the workflow


def add_workflow_options(parser) -> None:
    """The options of the benchmarks that run snakemake on a copy of the workflow: which
    commit to copy, keeping the copy, and stubbing out the SLURM plugin's start-up probe."""
    parser.add_argument(
        "--commit", help="benchmark the workflow as of this commit (default: the working tree)"
    )
    parser.add_argument(
        "--stub-scontrol",
        action="store_true",
        help="a failing scontrol first on snakemake's PATH (no SLURM start-up probe)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")


def copy_workflow(dest: Path, commit: str | None = None) -> Path:
    """Copy the files the workflow runs from (no results, no caches) into ``dest``: from the
    working tree, or as of ``commit`` (``git archive``; unaffected by uncommitted edits)."""
    dest.mkdir(parents=True, exist_ok=True)
    if commit:
        parts = [p for p in WORKFLOW_PARTS if _git("cat-file", "-e", f"{commit}:{p}") is not None]
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", commit, *parts],
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
        return dest
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in WORKFLOW_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=skip)
        elif src.exists():
            shutil.copy2(src, dest / part)
    return dest


_PATH_PREFIX: list[str] = []  # directories put first on PATH of the snakemake runs


def workflow_env(workdir: Path) -> dict[str, str]:
    """The environment the tests run snakemake in: the copy's src/ first on the path."""
    env = {**os.environ, "PYTHONPATH": str(workdir / "src")}
    if _PATH_PREFIX:
        env["PATH"] = os.pathsep.join([*_PATH_PREFIX, env.get("PATH", "")])
    return env


def slurm_probe() -> tuple[str, str]:
    """What ``scontrol show config`` costs here. The SLURM executor plugin (in uv.lock) runs it
    when Snakemake loads its plugins, i.e. at every ``snakemake`` start: instant where scontrol
    is missing or its controller answers, up to its 10 s timeout where SLURM's tools are
    installed but no controller runs."""
    exe = shutil.which("scontrol", path=workflow_env(REPO)["PATH"])
    if exe is None:
        return ("scontrol show config", "scontrol not found: snakemake's SLURM probe is free")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([exe, "show", "config"], capture_output=True, timeout=30)
        outcome = f"exit {proc.returncode}"
    except subprocess.TimeoutExpired:
        outcome = "timed out"
    seconds = time.perf_counter() - t0
    return (
        "scontrol show config",
        f"{seconds:.1f} s, {outcome} ({exe}; the SLURM executor plugin runs it at every "
        "snakemake start, with a 10 s timeout)",
    )


def stub_scontrol(directory: Path) -> None:
    """Put a ``scontrol`` that fails at once first on the snakemake runs' PATH: the SLURM
    plugin's start-up probe then costs nothing, as on a machine without SLURM's tools."""
    directory.mkdir(parents=True, exist_ok=True)
    stub = directory / "scontrol"
    stub.write_text("#!/bin/sh\nexit 1\n")
    stub.chmod(0o755)
    _PATH_PREFIX.insert(0, str(directory))


def run(
    cmd: Sequence[str],
    cwd: Path | None = None,
    timeout: float = 600,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> tuple[float, subprocess.CompletedProcess]:
    """Run ``cmd``; its wall time and the completed process (stdout and stderr merged)."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            list(cmd),
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as err:
        raise BenchmarkError(f"{' '.join(cmd)} took more than {timeout:.0f} s") from err
    seconds = time.perf_counter() - t0
    if check and proc.returncode != 0:
        raise BenchmarkError(
            f"{' '.join(cmd)} failed with exit code {proc.returncode}:\n{proc.stdout[-4000:]}"
        )
    return seconds, proc


def snakemake(
    workdir: Path, *args: str, timeout: float = 600, check: bool = True
) -> tuple[float, subprocess.CompletedProcess]:
    """``snakemake <args>`` in ``workdir`` with this environment's Python (as ``uv run
    snakemake`` runs it, minus uv's own start-up); wall time and output."""
    cmd = [sys.executable, "-m", "snakemake", *args]
    return run(cmd, cwd=workdir, timeout=timeout, env=workflow_env(workdir), check=check)


def job_stats(output: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats:' table Snakemake prints ({} if none)."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "Job stats:":
            jobs = {}
            for row in lines[i + 3 :]:
                parts = row.split()
                if len(parts) != 2 or not parts[1].isdigit():
                    break
                jobs[parts[0]] = int(parts[1])
            return jobs
    return {}


def fail(message: str) -> None:
    """Stop the benchmark with a message and exit code 1."""
    print(f"benchmark failed: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)
