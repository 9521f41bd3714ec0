"""Stopping the workflow on a user's mistake with one clear message, and no traceback.

The Snakefile runs inside Snakemake's command line: an exception raised there (a
``WorkflowError`` included) is printed with the location in our rule files that raised it and
Snakemake's own traceback, which points a user at internal code rather than at what to edit.
``stop`` prints the message to stderr and raises ``SystemExit(1)`` instead: Snakemake's
``main`` catches ``Exception`` only, so a ``SystemExit`` from the Snakefile leaves its API
context (which tears down its logging) and ends the process with exit status 1, printing
nothing more. Parsing comes before any planning, lock or job, under ``-n`` as in a real run.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn


def stop(message: str) -> NoReturn:
    """Print ``message`` to stderr and end the snakemake process with exit status 1."""
    print(message.rstrip("\n"), file=sys.stderr, flush=True)
    raise SystemExit(1)


def shown(path: str | Path) -> str:
    """``path`` relative to the working directory when it is below it, else absolute."""
    path = Path(path).absolute()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def config_files_line(configfiles: Iterable[str | Path], overrides: dict | None = None) -> str:
    """Which config files (and --config overrides) the workflow read, in the order applied."""
    files = [shown(f) for f in configfiles]
    text = f"config file{'s' if len(files) != 1 else ''}: {', '.join(files) or '(none)'}"
    if overrides:
        text += f"; --config overrides: {', '.join(map(str, overrides))}"
    return text


# The SLURM profile's placeholders (profiles/slurm/config.yaml, default-resources)
PLACEHOLDER = "CHANGE_ME"
PLACEHOLDER_HELP = {
    "slurm_partition": "your cluster's partition; `sinfo -s` lists them",
    "slurm_account": "your account; `sacctmgr show assoc user=$USER` lists yours",
}


def placeholders(default_resources: dict[str, object]) -> list[str]:
    """The default resources still set to the profile's placeholder ``CHANGE_ME``, from their
    raw text (``slurm_partition: "CHANGE_ME"`` in a profile is ``CHANGE_ME``, on the command
    line it may keep its quotes)."""
    return [
        name
        for name, raw in default_resources.items()
        if isinstance(raw, str) and raw.strip().strip("\"'") == PLACEHOLDER
    ]


def unedited_profile(names: list[str], dryrun: bool) -> str:
    """The warning (dry run) or error (a real run) about unedited placeholders."""
    lines = [
        f"  - {name}: {PLACEHOLDER}; set it to {PLACEHOLDER_HELP.get(name, 'its real value')}"
        for name in names
    ]
    where = (
        "the profile's default-resources (profiles/slurm/config.yaml, the lines marked EDIT) "
        "or --default-resources"
    )
    still = f"{', '.join(names)} still {'read' if len(names) > 1 else 'reads'} {PLACEHOLDER}"
    if dryrun:
        head = (
            f"warning: {still} in {where}; this dry run goes on, but a real run will refuse to "
            "submit any job until you edit:"
        )
    else:
        head = f"not submitting: {still} in {where}; no job was started. Edit:"
    return "\n".join([head, *lines])


def no_cores(cores: int | None) -> str | None:
    """The error for ``--cores 0`` (no job could ever start: Snakemake would plan and then wait
    forever), or None."""
    if cores is not None and cores < 1:
        return (
            f"--cores {cores}: no job can run with {cores} cores (Snakemake would plan the jobs "
            "and wait forever); use --cores all, or --cores N with N >= 1 (a dry run, -n, "
            "accepts any value)"
        )
    return None


def check_invocation(workflow) -> None:
    """Stop (or, in a dry run, warn) on a command line that cannot work, from the Snakefile
    before any job is planned: ``--cores 0``, and the SLURM profile's placeholders unedited.
    Only the main Snakemake process checks: the jobs it starts are past this point. At parse
    time Snakemake knows the dry-run flag, the cores and the default resources, but not yet
    the executor (``workflow.executor_plugin`` is None), so the placeholders are what tells an
    unedited SLURM profile."""
    if not workflow.is_main_process:
        return
    dryrun = bool(workflow.output_settings.dryrun)
    problem = no_cores(workflow.resource_settings.cores)
    if problem and not dryrun:
        stop(problem)
    resources = workflow.resource_settings.default_resources
    raw = {name: res.raw for name, res in resources.items()} if resources else {}
    names = placeholders(raw)
    if names and dryrun:
        print(unedited_profile(names, dryrun=True), file=sys.stderr, flush=True)
    elif names:
        stop(unedited_profile(names, dryrun=False))
