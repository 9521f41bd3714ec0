"""How many seeds of a configuration one job trains: ``train.seeds_per_job``, with ``auto`` (the
default) resolved for the study's size. Light (standard library only); read by the workflow when
it plans the jobs, by no job (so that tuning it reruns nothing).

``auto``: a study of at least AUTO_PACK_RUNS runs trains AUTO_SEEDS_PER_JOB seeds per job, one
after another (``packing: sequential``: each seed bit for bit its unpacked run); a smaller study,
or one set to ``packing: vmap`` (which is not bit-identical), one run per job. In a large sweep of
small jobs Snakemake's planning (milliseconds per job) and each job's start-up (seconds) cost
more than the training; the full studies of config/studies/ stay below the threshold.
"""

from __future__ import annotations

AUTO_PACK_RUNS = 2000
AUTO_SEEDS_PER_JOB = 10


def seeds_per_job(study: dict, n_runs: int) -> int:
    """The seeds per job of a (validated) study of ``n_runs`` runs, ``auto`` resolved."""
    train = study.get("train", {})
    per_job = train.get("seeds_per_job", "auto")
    if per_job != "auto":
        return per_job
    sequential = train.get("packing", "sequential") == "sequential"
    return AUTO_SEEDS_PER_JOB if sequential and n_runs >= AUTO_PACK_RUNS else 1


def resolved(study: dict, n_runs: int) -> dict:
    """The study with ``train.seeds_per_job`` resolved (what ``grid.seed_packs`` chunks by)."""
    train = {**study.get("train", {}), "seeds_per_job": seeds_per_job(study, n_runs)}
    return {**study, "train": train}
