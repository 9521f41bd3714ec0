"""Where a run lives: the one definition of run ids and run paths, used by grid expansion, the
workflow's rules and wildcard constraints, and the jobs. Light (standard library only).

A run's id is its configuration's id and its seed: ``<config id>/seed<k>``. A configuration id
is path segments naming what the run is (``<model>/<noise slug>/<optimizer slug>``, and a
segment a study kind may add, e.g. a second stage), so that every run of a study has a directory
of its own: ``results/<study>/runs/<run id>/``. A run may consume other runs' outputs (a
teacher's model, its predictions); it names them in ``run["inputs"]`` as ``<run id>/<file>`` of
the same study, and ``input_paths`` gives their files, which the workflow makes inputs of the
run's training job (so retraining the other run retrains this one).
"""

from __future__ import annotations

import re

RESULTS = "results"
SEGMENT = r"[A-Za-z0-9_.+=-]+"
# a configuration id: one or more path segments (the workflow's {config} wildcard)
CONFIG_PATTERN = rf"{SEGMENT}(?:/{SEGMENT})*?"
SEED_PATTERN = r"[0-9]+"


def config_id(*segments: str) -> str:
    """The id of a configuration from its segments, each a path segment or a configuration id
    to extend (``config_id(parent, "stage2")``); empty ones are left out."""
    parts = [part for s in segments if s for part in s.split("/")]
    for part in parts:
        if not re.fullmatch(SEGMENT, part):
            raise ValueError(
                f"a run path segment must be letters, digits and _.+=- only: {part!r} in "
                f"{'/'.join(segments)!r}"
            )
    return "/".join(parts)


def run_id(config: str, seed: int | str) -> str:
    """``<config id>/seed<k>``."""
    return f"{config}/seed{seed}"


def split_run_id(run: str) -> tuple[str, int]:
    """(config id, seed) of a run id."""
    config, _, last = run.rpartition("/")
    if not config or not last.startswith("seed") or not last[4:].isdigit():
        raise ValueError(f"not a run id (<config>/seed<k>): {run!r}")
    return config, int(last[4:])


def runs_dir(study: str) -> str:
    return f"{RESULTS}/{study}/runs"


def run_dir(study: str, run: str) -> str:
    """The directory of run ``run`` (a run id) of ``study``."""
    return f"{runs_dir(study)}/{run}"


def input_paths(run: dict) -> dict[str, str]:
    """The files of other runs that ``run`` consumes, by name: ``run["inputs"]`` maps a name to
    ``<run id>/<file>`` of the same study."""
    return {
        name: f"{runs_dir(run['study'])}/{target}"
        for name, target in sorted(run.get("inputs", {}).items())
    }


# a run's logits on the training split (the soft_targets rule's output), which students of a
# distillation study name in their inputs
SOFT_TARGETS = "train_logits.npy"
# a run's ``step_budget`` (corruptlab.jobs.train.training_length) that is the optimizer steps of
# its max_epochs passes over its whole training set, however few examples it trains on
FULL_SET_STEPS = "full_set"

# Path patterns of the workflow (Snakemake wildcards): a run's directory, and a configuration's
# (where a pack of its seeds writes each run's files).
RUN_DIR = f"{RESULTS}/{{study}}/runs/{{config}}/seed{{seed}}"
CONFIG_DIR = f"{RESULTS}/{{study}}/runs/{{config}}"
LABELS = f"{RESULTS}/{{study}}/labels/{{noise}}/seed{{seed}}.npz"
