# Config validation, grid expansion, input functions and wildcard constraints.
# Imports only light corruptlab modules (no torch, no pandas): this runs on every invocation.
from corruptlab.config import (
    ConfigError,
    eval_methods,
    expand_runs,
    noise_specs,
    ood_sets,
    seed_packs,
    validate_config,
)
from corruptlab.corruptions import CORRUPTIONS
from corruptlab.datasets import DATASETS, is_downloadable
from corruptlab.fingerprint import fingerprint
from corruptlab.models import MODELS
from corruptlab.noise import NOISE, variant_of
from corruptlab.optim import OPTIMIZERS
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
# Studies with train.seeds_per_job > 1 train packs of seeds in one job: seeds -> their studies.
PACKS = {}
for _study, _spec in config["studies"].items():
    for _seeds in seed_packs(_spec):
        PACKS.setdefault(tuple(_seeds), []).append(_study)
# where a pack's outputs go: each seed's usual run directory (see train.smk)
PACK_BASE = "results/{study}/runs/{model}/{noise}/{optim}"


def pack_name(seeds):
    """seeds0-7 for a range, else the seeds listed (seeds0_4_9)."""
    if list(seeds) == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds{seeds[0]}-{seeds[-1]}"
    return "seeds" + "_".join(map(str, seeds))


def pack_rule(step, seeds):
    """The name of the rule that runs ``step`` (train, evaluate, ood) for a pack of seeds."""
    return f"{step}_{pack_name(seeds).replace('-', '_')}"


def pack_files(seeds, name):
    """Each seed's ``name`` file of a pack, keyed by the name's stem and the seed (model3)."""
    return {f"{name.split('.')[0]}{s}": f"{PACK_BASE}/seed{s}/{name}" for s in seeds}


UNPACKED_STUDIES = [s for s, spec in config["studies"].items() if not seed_packs(spec)]
OOD_STUDIES = [s for s, spec in config["studies"].items() if spec["kind"] == "ood"]
# packed studies whose labels are drawn per seed (memorization studies share one data seed's)
LABEL_PACKED_STUDIES = [
    s
    for s, spec in config["studies"].items()
    if seed_packs(spec) and spec["kind"] != "memorization"
]

# Fingerprints of the library code behind each step; an edit reruns that step and what follows.
CODE = {
    "prepare": fingerprint("datasets", "io"),
    "labels": fingerprint("noise", "seeding", "params"),
    "train": fingerprint(
        "pipeline",
        "training",
        "models",
        "optim",
        "devices",
        "seeding",
        "datasets",
        "csr",
    ),
    "train_pack": fingerprint(
        "pipeline",
        "training",
        "packing",
        "models",
        "optim",
        "devices",
        "seeding",
        "datasets",
        "csr",
    ),
    "testset": fingerprint("testsets", "corruptions", "datasets", "io"),
    "evaluate": fingerprint(
        "evaluation",
        "metrics",
        "models",
        "training",
        "devices",
        "adaptation",
        "optim",
        "datasets",
        "pipeline",
        "noise",
    ),
    "ood": fingerprint(
        "evaluation", "ood", "models", "training", "devices", "datasets", "seeding"
    ),
    "tables": fingerprint("tables", "claims", "stats", "memorization", "noise"),
    "figures": fingerprint("figures", "memorization", "tables"),
    "gallery": fingerprint("gallery", "corruptions"),
}


def _alternatives(names):
    """A regex matching exactly ``names`` (and nothing if there are none)."""
    names = sorted(names, key=len, reverse=True)
    return "|".join(names) if names else "(?!)"


_PARAM_CODES = r"(?:-[a-z]+[0-9][0-9.e+-]*)*"


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
