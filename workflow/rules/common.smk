# Config validation, grid expansion, input functions and wildcard constraints.
# Imports only light corruptlab modules (no torch, no pandas): this runs on every invocation.
from corruptlab.core.config import (
    ConfigError,
    eval_methods,
    expand_runs,
    noise_specs,
    ood_sets,
    seed_packs,
    validate_config,
)
from corruptlab.data.corruptions import CORRUPTIONS
from corruptlab.data.datasets import DATASETS, is_downloadable
from corruptlab.core.fingerprint import script_fingerprint
from corruptlab.train.models import MODELS
from corruptlab.data.noise import NOISE, variant_of
from corruptlab.train.objectives import OBJECTIVES
from corruptlab.train.optim import OPTIMIZERS
from corruptlab.train.schedules import SCHEDULES
from corruptlab.studies import STUDIES

try:
    validate_config(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None

RUNS = {
    study: {run["run_id"]: run for run in expand_runs(study, spec, config)}
    for study, spec in config["studies"].items()
}
RUN_DIR = "results/{study}/runs/{model}/{noise}/{optim}/seed{seed}"
# where a pack's outputs go: each seed's usual run directory
PACK_BASE = "results/{study}/runs/{model}/{noise}/{optim}"

# A job labels, trains, evaluates or scores a pack of one configuration's seeds: chunks of
# train.seeds_per_job of the study's sorted seeds. A single run is a pack of one, whose seed is
# a wildcard (ONE); a larger pack names its seeds in its outputs, so each distinct one gets a
# rule of its own (few, and shared by the studies that have them). One rule definition and one
# script per step serve both.
ONE = ("{seed}",)
ONE_STUDIES = [s for s, spec in config["studies"].items() if not seed_packs(spec)]
PACKS = {ONE: ONE_STUDIES} if ONE_STUDIES else {}
for _study, _spec in config["studies"].items():
    for _seeds in seed_packs(_spec):
        PACKS.setdefault(tuple(_seeds), []).append(_study)
OOD_STUDIES = [s for s, spec in config["studies"].items() if spec["kind"] == "ood"]
# studies whose runs share one data seed's labels (memorization's randX and randY): their
# labels are made one seed at a time whatever their packs
SHARED_LABELS = [
    s for s in config["studies"] if any("data_seed" in r for r in RUNS[s].values())
]
LABEL_PACKS = {
    ONE: [s for s in config["studies"] if s in ONE_STUDIES or s in SHARED_LABELS]
}
for _pack, _studies in PACKS.items():
    if _pack != ONE and set(_studies) - set(SHARED_LABELS):
        LABEL_PACKS[_pack] = [s for s in _studies if s not in SHARED_LABELS]
LABEL_PACKS = {p: s for p, s in LABEL_PACKS.items() if s}


def pack_name(seeds):
    """seed{seed} for a pack of one, seeds0-7 for a range, else the seeds listed (seeds0_4_9)."""
    if seeds == ONE:
        return "seed{seed}"
    if list(seeds) == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds{seeds[0]}-{seeds[-1]}"
    return "seeds" + "_".join(map(str, seeds))


def pack_rule(step, seeds):
    """The name of the rule running ``step`` for a pack, ``step`` for packs of one, else
    ``<step>_<pack name>`` (train_seeds0_2)."""
    return step if seeds == ONE else f"{step}_{pack_name(seeds).replace('-', '_')}"


def pack_seeds(wildcards, seeds):
    """The seeds of a job of the pack ``seeds``."""
    return [int(wildcards.seed)] if seeds == ONE else list(seeds)


def pack_files(seeds, name):
    """Each run's ``name`` file of a pack, keyed by the name's stem and the position in the pack
    (model_0, model_1, ...)."""
    return {
        f"{name.split('.')[0]}_{i}": f"{PACK_BASE}/seed{s}/{name}"
        for i, s in enumerate(seeds)
    }


def pack_log(step, seeds, suffix="log"):
    """The log (or benchmark) of a pack's job: in the run directory for a pack of one."""
    if seeds == ONE:
        return f"{RUN_DIR}/{step}.{suffix}"
    return f"{PACK_BASE}/{step}-{pack_name(seeds)}.{suffix}"


# Fingerprints of the library code behind each rule's script (every corruptlab module it
# reaches, read from the source): an edit reruns that step and what follows.
CODE = {
    script.stem: script_fingerprint(script)
    for script in sorted(Path(workflow.basedir, "scripts").glob("*.py"))
    if not script.stem.startswith("_")
}


def _alternatives(names):
    """A regex matching exactly ``names`` (and nothing if there are none)."""
    names = sorted(names, key=len, reverse=True)
    return "|".join(names) if names else "(?!)"


_PARAM_CODES = r"(?:-[a-z]+[0-9][0-9.e+-]*)*"
# a run path's optimizer part: the optimizer's slug, a non-constant lr schedule's, a
# non-default objective's (by its code), the batch size and, for an epoch grid, the epochs
OPTIM_SLUG = (
    f"(?:{_alternatives(OPTIMIZERS)}){_PARAM_CODES}"
    f"(?:-(?:{_alternatives(SCHEDULES)}){_PARAM_CODES})?"
    f"(?:-(?:{_alternatives(OBJECTIVES.get(n).code for n in OBJECTIVES)}){_PARAM_CODES})?"
    "-bs[0-9]+(?:-e[0-9]+)?"
)


def run_of(wildcards, seed=None):
    """The run dict (every hyper-parameter of one training job) for a run directory (or for
    ``seed`` under the same study, model, noise and optimizer)."""
    seed = wildcards.seed if seed is None else seed
    run_id = f"{wildcards.model}/{wildcards.noise}/{wildcards.optim}/seed{seed}"
    try:
        return RUNS[wildcards.study][run_id]
    except KeyError:
        raise ValueError(
            f"{run_id} is not a run of study {wildcards.study!r}"
        ) from None


def study_dataset(wildcards):
    return config["studies"][wildcards.study]["dataset"]


def dataset_file(wildcards):
    return f"resources/datasets/{study_dataset(wildcards)}/data.pt"


def study_runs(wildcards):
    return list(RUNS[wildcards.study].values())


def run_files(study, name):
    return [f"results/{study}/runs/{run_id}/{name}" for run_id in RUNS[study]]


def all_targets():
    targets = []
    for study, spec in config["studies"].items():
        kind = STUDIES.get(spec["kind"])
        targets += [f"results/{study}/tables/{t}.parquet" for t in kind.tables]
        targets += [
            f"results/{study}/figures/{f}.{ext}"
            for f in kind.figures
            for ext in ("png", "pdf")
        ]
    return targets


def prepare_input(wildcards):
    if is_downloadable(wildcards.dataset):
        return {"raw": f"resources/datasets/{wildcards.dataset}/raw"}
    return {}


def needed_tables(wildcards):
    """The study's tables that a table or figure is computed from (declared by its kind)."""
    kind = STUDIES.get(config["studies"][wildcards.study]["kind"])
    target = wildcards.get("table") or wildcards.get("figure")
    return {
        t: f"results/{wildcards.study}/tables/{t}.parquet" for t in kind.needs(target)
    }


def testset_file(dataset, corruption, severity):
    return f"resources/datasets/{dataset}/testsets/{corruption}/s{severity}.pt"


def test_conditions(wildcards):
    """The clean test set, then every configured corruption x severity (files made once per
    dataset by the testset rule and shared by all runs and studies)."""
    study = config["studies"][wildcards.study]
    ev = study["evaluation"]
    return [{"name": "clean", "severity": 0}] + [
        {"name": c, "severity": s, "path": testset_file(study["dataset"], c, s)}
        for c in ev["corruptions"]
        for s in ev["severities"]
    ]


def eval_conditions(wildcards, seed=None):
    """The test conditions, and in memorization studies the run's training examples (of
    ``seed`` under the same configuration, if given)."""
    study = config["studies"][wildcards.study]
    conditions = test_conditions(wildcards)
    memorization = study["memorization"]
    if study["kind"] == "memorization" and memorization["examples"] == "train":
        # the run's own training examples as trained (randX inputs, randY labels)
        conditions.append(
            {
                "name": "train",
                "severity": 0,
                "family": "train",
                "n": memorization["n_examples"],
                "labels": labels_file(wildcards, seed),
            }
        )
    return conditions


def testset_files(wildcards):
    return [c["path"] for c in test_conditions(wildcards) if "path" in c]


def labels_file(wildcards, seed=None):
    """The noisy labels a run trains on: its own seed's, or its study's shared data seed's
    (memorization studies: the same randX images and randY labels in every seed)."""
    run = run_of(wildcards, seed)
    data_seed = run.get("data_seed", run["seed"])
    return f"results/{wildcards.study}/labels/{wildcards.noise}/seed{data_seed}.npz"


def memorization_variants(wildcards):
    """Variant name (real, randX, randY, ...) -> noise slug, of a memorization study."""
    return {
        variant_of(run["noise"]): run["noise_slug"]
        for run in RUNS[wildcards.study].values()
    }


def memorization_labels_files(wildcards):
    """The labels file of each variant (the shared data seed's), in memorization_variants'
    order."""
    data_seed = config["studies"][wildcards.study]["memorization"]["data_seed"]
    return [
        f"results/{wildcards.study}/labels/{slug}/seed{data_seed}.npz"
        for slug in memorization_variants(wildcards).values()
    ]


def eval_labels_files(wildcards, seed=None):
    return [c["labels"] for c in eval_conditions(wildcards, seed) if "labels" in c]


def study_eval_methods(wildcards):
    return eval_methods(config["studies"][wildcards.study])


def study_in_classes(wildcards):
    return config["studies"][wildcards.study].get("in_classes")


def ood_set_specs(wildcards):
    """The study's OOD sets, with the file each reads: corrupted test sets (testset rule) and
    other datasets' prepared files (prepare rule, after download)."""
    study = config["studies"][wildcards.study]
    specs = []
    for spec in ood_sets(study):
        if spec["family"] == "corruption":
            spec = {
                **spec,
                "path": testset_file(study["dataset"], spec["name"], spec["severity"]),
            }
        elif spec["family"] == "dataset":
            spec = {**spec, "path": f"resources/datasets/{spec['name']}/data.pt"}
        specs.append(spec)
    return specs


def ood_files(wildcards):
    return [spec["path"] for spec in ood_set_specs(wildcards) if "path" in spec]


def _study_resources(wildcards):
    return config["studies"][wildcards.study]["resources"]


# Resources of the jobs that train or evaluate a model (the GPU jobs); memory and runtime grow
# with each attempt, so a job retried after running out of either asks for more.
def run_resources(runs=1):
    """Resources of a job that trains or evaluates ``runs`` runs (a pack's seeds, one after
    another): GPU and memory of one run, the runtime of all."""
    return {
        "gpu": lambda wildcards: _study_resources(wildcards)["gpus"],
        "gpu_model": lambda wildcards: _study_resources(wildcards).get("gpu_model", ""),
        "mem_mb": lambda wildcards, attempt: _study_resources(wildcards)["mem_mb"]
        * attempt,
        "runtime": lambda wildcards, attempt: _study_resources(wildcards)["runtime"]
        * runs
        * attempt,
    }


RUN_RESOURCES = run_resources()
