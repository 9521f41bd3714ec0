"""Run one reproduction through Snakemake, timed, and keep its small outputs for the ledger."""

from __future__ import annotations

import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from corruptlab.core.io import write_json
from corruptlab.core.provenance import cpu_model, git_commit

CONFIG_DIR = Path("config/reproductions")
DOCS_DIR = Path("docs/reproductions")
# tables larger than this stay in results/ (per-example predictions, per-epoch histories)
MAX_TABLE_BYTES = 1_000_000
PROVENANCE = "provenance.json"


class ReproductionError(Exception):
    """A reproduction that cannot be run or collected, with what to do instead."""


def names() -> list[str]:
    """The reproductions there are: one config file each."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def config_path(name: str) -> Path:
    path = CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ReproductionError(
            f"no reproduction {name!r}: {path} does not exist; accepted: {', '.join(names())}"
        )
    return path


def studies_of(name: str) -> dict[str, dict]:
    """The studies of a reproduction's config: the reproduction itself (named as the file) and
    any second points (named ``<name>_<what differs>``), in the file's order."""
    path = config_path(name)
    studies = (yaml.safe_load(path.read_text()) or {}).get("studies") or {}
    if name not in studies or any(s != name and not s.startswith(name + "_") for s in studies):
        raise ReproductionError(
            f"{path}: a reproduction's config holds a study named as the file ({name!r}) and "
            f"optionally second points named {name}_<what differs>; it has {sorted(studies)}"
        )
    return studies


def command(name: str) -> list[str]:
    return ["snakemake", "--cores", "all", "--configfile", str(config_path(name))]


# per reproduction run by this process: the 1-minute load average at its start and the CPU
# seconds its processes used (user + system), beside the wall time: a busy machine stretches the
# wall time, not the CPU time
LOAD: dict[str, float] = {}
CPU_SECONDS: dict[str, float] = {}
# per reproduction run by this process: whether it started from no results at all (a run from
# scratch, whose wall time the ledger gives) or updated earlier ones (then the wall time of the
# earlier run from scratch is kept, and this run's is recorded as an update's)
FRESH: dict[str, bool] = {}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(name: str, extra: list[str], results: Path = Path("results")) -> float:
    """Run the reproduction's Snakemake workflow; return its wall seconds."""
    LOAD[name] = round(os.getloadavg()[0], 2)
    FRESH[name] = not any((results / study / "runs").exists() for study in studies_of(name))
    cmd = command(name) + extra
    print(f"reproduction {name}: {shlex.join(cmd)}", file=sys.stderr, flush=True)
    start, cpu = time.monotonic(), _children_cpu()
    done = subprocess.run(cmd, check=False)
    seconds = time.monotonic() - start
    CPU_SECONDS[name] = round(_children_cpu() - cpu, 1)
    if done.returncode != 0:
        raise ReproductionError(
            f"{shlex.join(cmd)} failed (exit {done.returncode}) after {seconds:.0f} s; fix the "
            "cause and run again: finished jobs are kept"
        )
    return seconds


# hand-written files of a reproduction's folder that collecting keeps
KEPT_FILES = ("notes.md",)


def collect(name: str, seconds: float | None, results: Path = Path("results")) -> Path:
    """Copy a finished reproduction's small tables and figures (PNG), per study, and its config
    to ``docs/reproductions/<name>/`` with its provenance; its ``notes.md`` is kept."""
    studies = studies_of(name)
    missing = [s for s in studies if not (results / s / "tables" / "claims.parquet").is_file()]
    if missing:
        raise ReproductionError(
            f"{', '.join(str(results / s / 'tables' / 'claims.parquet') for s in missing)} "
            f"missing: run the reproduction first (python -m corruptlab.reproductions run {name})"
        )
    out = DOCS_DIR / name
    kept, left = {}, {}
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for study in studies:
        (staging / study / "tables").mkdir(parents=True)
        (staging / study / "figures").mkdir()
        kept[study], left[study] = [], []
        for table in sorted((results / study / "tables").glob("*.parquet")):
            big = table.stat().st_size > MAX_TABLE_BYTES
            (left if big else kept)[study].append(table.name)
            if not big:
                shutil.copy2(table, staging / study / "tables" / table.name)
        for figure in sorted((results / study / "figures").glob("*.png")):
            shutil.copy2(figure, staging / study / "figures" / figure.name)
    shutil.copy2(config_path(name), staging / "config.yaml")
    for keep in KEPT_FILES:
        if (out / keep).is_file():
            shutil.copy2(out / keep, staging / keep)
    previous = out / PROVENANCE
    old = json.loads(previous.read_text()) if previous.is_file() else {}
    timed = seconds is not None and (FRESH.get(name, True) or old.get("wall_seconds") is None)
    measured = {
        "wall_seconds": round(seconds, 1) if timed else old.get("wall_seconds"),
        "load_at_start": LOAD.get(name) if timed else old.get("load_at_start"),
        "cpu_seconds": CPU_SECONDS.get(name) if timed else old.get("cpu_seconds"),
        "timed_commit": git_commit() if timed else old.get("timed_commit"),
    }
    if seconds is not None and not timed:
        measured["last_update"] = {
            "commit": git_commit(),
            "wall_seconds": round(seconds, 1),
            "cpu_seconds": CPU_SECONDS.get(name),
        }
    provenance = {
        "reproduction": name,
        "studies": list(studies),
        "kind": studies[name]["kind"],
        "command": f"uv run python -m corruptlab.reproductions run {name}",
        "snakemake_command": "uv run " + shlex.join(command(name)),
        "commit": git_commit(),
        "collected": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        **measured,
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "tables_kept": kept,
        "tables_left_in_results": left,
    }
    write_json(provenance, staging / PROVENANCE)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return out
