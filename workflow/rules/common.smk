# Config validation, grid expansion, input functions and wildcard constraints.
# Imports only light corruptlab modules (no torch, no matplotlib): this runs on every invocation.
import inspect

from corruptlab.core.config import ConfigError, expand_runs, validate_config
from corruptlab.core.grid import noise_specs, seed_packs
from corruptlab.eval.adaptation import eval_methods
from corruptlab.data.corruptions import CORRUPTIONS
from corruptlab.data.datasets import DATASETS, is_downloadable
from corruptlab.core import packs, runs
from corruptlab.core.fingerprint import script_fingerprint
from corruptlab.studies import PER_RUN_TABLES, STUDIES, kind_source
from snakemake.common import FUNC_OVERWRITE_PARAMS_ATTR, overwrite_function_params

try:
    validate_config(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None

RUNS = {
    study: {run["run_id"]: run for run in expand_runs(study, spec, config)}
    for study, spec in config["studies"].items()
}
# each study's kind (corruptlab.studies): what its runs are, and what it aggregates them into
KIND = {study: STUDIES.get(spec["kind"]) for study, spec in config["studies"].items()}
RUN_DIR = runs.RUN_DIR
# where a pack's outputs go: each seed's usual run directory under its configuration's
PACK_BASE = runs.CONFIG_DIR

# A job labels, trains, evaluates or scores a pack of one configuration's seeds: chunks of
# train.seeds_per_job of the study's sorted seeds (auto: 10 in a study of 2,000 runs or more; see
# corruptlab.core.packs). A single run is a pack of one, whose seed is a wildcard (ONE). A full
# decade of seeds 10d..10d+9 is a pack of DECADE, whose files are named by a wildcard {decade}
# (seed{decade}0 ... seed{decade}9; empty for seeds 0-9): one rule per step serves every such
# pack of every study, so a sweep of thousands of seeds has a handful of rules, not one per pack
# (Snakemake compares each file with every rule's outputs). Any other pack names its seeds in
# its outputs, so each distinct one gets a rule of its own (few, and shared by the studies that
# have them), ordered before the decade rule where both could make a file (an incomplete last
# decade). One rule definition and one script per step serve them all.
ONE = ("{seed}",)
DECADE = "decade"
SEEDS_PER_DECADE = 10


def is_decade(seeds):
    first = seeds[0]
    return first % 10 == 0 and list(seeds) == list(range(first, first + 10))


PACKS = {}
for _study, _spec in config["studies"].items():
    _packs = seed_packs(packs.resolved(_spec, len(RUNS[_study])))
    for _seeds in [DECADE if is_decade(p) else tuple(p) for p in _packs] or [ONE]:
        PACKS.setdefault(_seeds, [])
        if _study not in PACKS[_seeds]:
            PACKS[_seeds].append(_study)
ONE_STUDIES = PACKS.get(ONE, [])
OOD_STUDIES = [s for s in config["studies"] if "ood" in KIND[s].steps]
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


def pack_spellings(seeds):
    """How the seeds of a pack are spelled in its rule's file names: a wildcard for a pack of
    one, the decade wildcard and a digit for a decade, else the seeds themselves."""
    if seeds == ONE:
        return list(ONE)
    if seeds == DECADE:
        return [f"{{decade}}{i}" for i in range(SEEDS_PER_DECADE)]
    return [str(s) for s in seeds]


def pack_size(seeds):
    return len(pack_spellings(seeds))


def pack_name(seeds):
    """seed{seed} for a pack of one, seeds0-7 for a range (seeds{decade}0-{decade}9 for a
    decade), else the seeds listed (seeds0_4_9)."""
    if seeds == ONE:
        return "seed{seed}"
    if seeds == DECADE:
        return "seeds{decade}0-{decade}9"
    if list(seeds) == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds{seeds[0]}-{seeds[-1]}"
    return "seeds" + "_".join(map(str, seeds))


def pack_rule(step, seeds):
    """The name of the rule running ``step`` for a pack, ``step`` for packs of one,
    ``<step>_decades`` for decades, else ``<step>_<pack name>`` (train_seeds0_2)."""
    if seeds == ONE:
        return step
    if seeds == DECADE:
        return f"{step}_decades"
    return f"{step}_{pack_name(seeds).replace('-', '_')}"


def order_before_decades(step, step_packs):
    """Let the rule of each of the step's packs make the files that the decade rule could also
    make (an incomplete decade: seeds 1000-1004 of 1,005)."""
    if DECADE in step_packs:
        for seeds in step_packs:
            if seeds not in (ONE, DECADE):
                workflow.ruleorder(pack_rule(step, seeds), pack_rule(step, DECADE))


def pack_seeds(wildcards, seeds):
    """The seeds of a job of the pack ``seeds``."""
    if seeds == ONE:
        return [int(wildcards.seed)]
    if seeds == DECADE:
        first = int(wildcards.decade or 0) * SEEDS_PER_DECADE  # "" for seeds 0-9
        return list(range(first, first + SEEDS_PER_DECADE))
    return list(seeds)


def pack_files(seeds, name):
    """Each run's ``name`` file of a pack, keyed by the name's stem and the position in the pack
    (model_0, model_1, ...)."""
    return {
        f"{name.split('.')[0]}_{i}": f"{PACK_BASE}/seed{s}/{name}"
        for i, s in enumerate(pack_spellings(seeds))
    }


def trained_files(seeds):
    """The model.pt and run.json of each run of a pack (model_0, run_0, ...): inputs of the
    pack's evaluate and ood rules, which ``trained_by`` names the pack's training rule as the
    producer of."""
    return {**pack_files(seeds, "model.pt"), **pack_files(seeds, "run.json")}


def trained_by(seeds):
    """``produced_by``'s map for ``trained_files``: each of them made by the pack's training
    rule (Snakemake then takes their producer from the rule instead of matching each file
    against every rule's outputs: in a large sweep, most of its time)."""
    return dict.fromkeys(trained_files(seeds), pack_rule("train", seeds))


def produced_by(rule_name, producers):
    """Name the rule that makes the files of some of a rule's inputs (``producers`` maps an
    input's name to its producer's name, or to None: let Snakemake look each file up). Without
    a name Snakemake matches each input file with every rule's outputs: in a large sweep, most
    of its time. This fills Snakemake's own table of producers (``Rule.dependencies``, keyed by
    the input item: a file pattern, or an input function for all the files it returns;
    Snakemake 9.27's rules.py), which it fills itself for an input given as another rule's
    output (but such an input carries that rule's wildcard constraints, which Snakemake warns
    about on every run). A file that the named rule cannot make fails the DAG, so a name is
    given only where one rule makes every file of the input.
    """
    consumer = workflow.get_rule(rule_name)
    for name, producer in producers.items():
        item = consumer.input.get(name)  # an input function, or a file pattern
        if producer is not None and item is not None and workflow.is_rule(producer):
            consumer.dependencies[item] = producer


def labels_rule(train_seeds):
    """The rule making the labels files of the training rule of a pack (None if its studies'
    labels are made by more than one rule): the pack's own labels rule, or the one-seed rule
    for studies whose runs share one data seed's labels."""
    studies = set(PACKS[train_seeds])
    for label_seeds, label_studies in LABEL_PACKS.items():
        if studies <= set(label_studies) and (
            label_seeds == train_seeds or label_seeds == ONE
        ):
            return pack_rule("labels", label_seeds)
    return None


def sole_pack(step):
    """The rule running ``step`` for every run of every study, if one rule does (a sweep of
    full decades of seeds, or studies of single runs only); else None."""
    if len(PACKS) == 1:
        return pack_rule(step, next(iter(PACKS)))
    return None


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


def kind_code(script):
    """The fingerprint of an aggregation script together with its study's kind module (which
    the job imports by name): editing a kind's module redraws that kind's tables and figures.
    """
    path = Path(workflow.basedir, "scripts", f"{script}.py")
    return lambda w: script_fingerprint(
        path, kind_source(config["studies"][w.study]["kind"])
    )


def _alternatives(names):
    """A regex matching exactly ``names`` (and nothing if there are none)."""
    names = sorted(names, key=len, reverse=True)
    return "|".join(names) if names else "(?!)"


def run_of(wildcards, seed=None):
    """The run dict (every hyper-parameter of one training job) of a run directory (or of
    ``seed`` under the same configuration)."""
    run = runs.run_id(wildcards.config, wildcards.seed if seed is None else seed)
    try:
        return RUNS[wildcards.study][run]
    except KeyError:
        raise ValueError(f"{run} is not a run of study {wildcards.study!r}") from None


def run_inputs(wildcards, seeds=ONE):
    """The files of other runs that the runs of a pack consume (a teacher's model, say: see
    corruptlab.core.runs), so that retraining those runs retrains these."""
    return sorted(
        {
            path
            for s in pack_seeds(wildcards, seeds)
            for path in runs.input_paths(run_of(wildcards, s)).values()
        }
    )


def study_dataset(wildcards):
    return config["studies"][wildcards.study]["dataset"]


def dataset_file(wildcards):
    return f"resources/datasets/{study_dataset(wildcards)}/data.pt"


def study_runs(wildcards):
    return list(RUNS[wildcards.study].values())


def run_files(study, name):
    return [f"{runs.run_dir(study, run)}/{name}" for run in RUNS[study]]


def all_targets():
    targets = []
    for study, spec in config["studies"].items():
        kind = KIND[study]
        targets += [f"results/{study}/tables/{t}.parquet" for t in kind.table_names]
        targets += [
            f"results/{study}/figures/{f}.{ext}"
            for f in kind.figures_of(spec)
            for ext in ("png", "pdf")
        ]
    return targets


def prepare_input(wildcards):
    if is_downloadable(wildcards.dataset):
        return {"raw": f"resources/datasets/{wildcards.dataset}/raw"}
    return {}


def needed_tables(wildcards):
    """What a table or figure is computed from (declared by its kind): the study's tables it
    needs, and the files it reads besides them (the dataset; labels files)."""
    output = KIND[wildcards.study].output(
        wildcards.get("table") or wildcards.get("figure")
    )
    inputs = {t: f"results/{wildcards.study}/tables/{t}.parquet" for t in output.needs}
    if "dataset" in output.files:
        inputs["dataset"] = dataset_file(wildcards)
    if "labels" in output.files:
        inputs["labels"] = [path for _, path in variant_labels(wildcards)]
    return inputs


def output_files(wildcards):
    """The files a figure reads besides tables (see corruptlab.studies.Output)."""
    output = KIND[wildcards.study].output(wildcards.figure)
    files = {}
    if "dataset" in output.files:
        files["dataset"] = dataset_file(wildcards)
    if "labels" in output.files:
        files["labels"] = variant_labels(wildcards)
    return files


def page_inputs(wildcards):
    """A study page's inputs: the study's own tables (parquet) and figures (PNG)."""
    kind = KIND[wildcards.study]
    base = f"results/{wildcards.study}"
    return {
        "tables": [f"{base}/tables/{t}.parquet" for t in kind.tables],
        "figures": [
            f"{base}/figures/{f}.png"
            for f in kind.figures_of(config["studies"][wildcards.study])
        ],
    }


def variant_labels(wildcards):
    """(noise spec, labels file) of each noise setting of a study, for its first run's data
    seed (a memorization study's shared one)."""
    firsts = {}
    for run in RUNS[wildcards.study].values():
        firsts.setdefault(run["noise_slug"], run)
    return [
        [
            run["noise"],
            runs.LABELS.format(
                study=wildcards.study,
                noise=slug,
                seed=run.get("data_seed", run["seed"]),
            ),
        ]
        for slug, run in firsts.items()
    ]


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
    """The test conditions, then the kind's own (of ``seed`` under the same configuration, if
    given); a condition of family ``train`` reads the run's labels file."""
    conditions = test_conditions(wildcards)
    for condition in KIND[wildcards.study].eval_conditions(
        config["studies"][wildcards.study]
    ):
        if condition.get("family") == "train":
            condition = {**condition, "labels": labels_file(wildcards, seed)}
        conditions.append(condition)
    return conditions


def testset_files(wildcards):
    return [c["path"] for c in test_conditions(wildcards) if "path" in c]


def labels_file(wildcards, seed=None):
    """The noisy labels a run trains on: its own seed's, or its study's shared data seed's
    (memorization studies: the same randX images and randY labels in every seed)."""
    run = run_of(wildcards, seed)
    data_seed = run.get("data_seed", run["seed"])
    return runs.LABELS.format(
        study=wildcards.study, noise=run["noise_slug"], seed=data_seed
    )


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
    for spec in KIND[wildcards.study].ood_sets(study):
        if spec["family"] == "corruption":
            spec = {
                **spec,
                "path": testset_file(study["dataset"], spec["name"], spec["severity"]),
            }
        elif spec["family"] == "dataset":
            spec = {**spec, "path": f"resources/datasets/{spec['name']}/data.pt"}
        specs.append(spec)
    return specs


def ood_scores(wildcards):
    return KIND[wildcards.study].ood_scores(config["studies"][wildcards.study])


def ood_files(wildcards):
    return [spec["path"] for spec in ood_set_specs(wildcards) if "path" in spec]


def _study_resources(wildcards):
    return config["studies"][wildcards.study]["resources"]


# Snakemake asks each input, params and resources function of every job for its signature (which
# of wildcards, input, threads, attempt... it takes): inspect.signature, 64,000 times on a
# 10,000-run sweep, ~5 % of planning it. A function may carry its parameters precomputed, under
# the attribute Snakemake's own path helpers (snakemake.ioutils) set for the same purpose.
def signature_cached(func):
    if callable(func) and not hasattr(func, FUNC_OVERWRITE_PARAMS_ATTR):
        try:
            overwrite_function_params(func, inspect.signature(func).parameters)
        except AttributeError:  # a bound method takes no attributes: Snakemake inspects it
            pass
    return func


def cache_signatures(rules):
    """Precompute the signature of every input and params function of ``rules``."""
    for rule in rules:
        for item in [*rule.input, *rule.params]:
            # a function stays one, or is wrapped (with flags) as apply_input_function unwraps it
            signature_cached(
                getattr(getattr(item, "_file", item), "callable", None) or item
            )


# Resources of the jobs that train or evaluate a model (the GPU jobs); memory and runtime grow
# with each attempt, so a job retried after running out of either asks for more.
def run_resources(n_runs=1):
    """Resources of a job that trains or evaluates ``n_runs`` runs (a pack's seeds, one after
    another): GPU and memory of one run, the runtime of all."""
    resources = {
        "gpu": lambda wildcards: _study_resources(wildcards)["gpus"],
        "gpu_model": lambda wildcards: _study_resources(wildcards).get("gpu_model", ""),
        "mem_mb": lambda wildcards, attempt: _study_resources(wildcards)["mem_mb"]
        * attempt,
        "runtime": lambda wildcards, attempt: _study_resources(wildcards)["runtime"]
        * n_runs
        * attempt,
    }
    return {name: signature_cached(f) for name, f in resources.items()}


RUN_RESOURCES = run_resources()
