# corruptlab: how neural networks learn from corrupted data.
# Entry point: validates the config, then chains download -> prepare -> corrupt -> train ->
# evaluate -> aggregate. The rules live in workflow/rules/; the logic in src/corruptlab/.
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

# the library, also where it is not installed (e.g. snakemake from a conda env); the scripts
# find it the same way through scripts/_src.py
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from corruptlab.core.stop import check_invocation

# a command line that cannot work (--cores 0; the SLURM profile's CHANGE_ME placeholders) stops
# here with one message and exit status 1, before any job is planned; a dry run only warns
check_invocation(workflow)


# the default config, unless --configfile names another (which then replaces it, not merges)
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"


wildcard_constraints:
    study=_alternatives(config["studies"]),
    dataset=_alternatives(DATASETS),
    config=runs.CONFIG_PATTERN,
    noise=runs.SEGMENT,
    seed=runs.SEED_PATTERN,
    decade="[1-9][0-9]*|",  # empty for seeds 0-9 (seed{decade}0 is seed0)


include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/aggregate.smk"


# the landing text of `snakemake --report report.html`
report: "workflow/report/workflow.rst"


# Run by the Snakemake process itself, also under a cluster executor: downloads need the
# internet of the login node; tables and figures take seconds and are not worth a queue wait
# (every rule of workflow/rules/aggregate.smk: tests/test_workflow.py checks it).
localrules:
    all,
    download,
    runs_table,
    ood_runs_table,
    predictions_table,
    histories_table,
    table,
    figure,
    study_page,


rule all:
    """Every study of the config: its tables, figures and page (the default target)."""
    default_target: True
    input:
        # per study: its tables, figures and page (its claims, figures and tables in one HTML file)
        all_targets(),


# One target per study, named after it: `snakemake --cores all <study>` makes (or remakes) just
# that study's tables, figures and page. A study may not take the name of a rule of the workflow.
_clashes = [study for study in config["studies"] if workflow.is_rule(study)]
if _clashes:
    stop(
        f"{config_files_line(workflow.configfiles, workflow.config_settings.config)}\n"
        "invalid config (see config/README.md):\n"
        + "\n".join(
            f"  - studies.{study}: the name {study!r} is taken by a rule of the workflow "
            "(each study gets a target of its name); rename the study"
            for study in _clashes
        )
    )
for _study in config["studies"]:

    rule:
        name:
            _study
        input:
            study_targets(_study),
        localrule: True

    workflow.get_rule(_study).docstring = (
        f"Study {_study} ({config['studies'][_study]['kind']}): its tables, figures and page"
    )


# When a run starts (not a dry run): the environment's packages get their bytecode once after
# each install, so that every job, a fresh Python process, imports torch from .pyc files also
# where PYTHONDONTWRITEBYTECODE is set (src/corruptlab/core/bytecode.py says why uv does not).
onstart:
    from corruptlab.core.bytecode import compile_site_packages

    seconds = compile_site_packages()
    if seconds is not None:
        print(
            f"Compiled the environment's bytecode in {seconds:.0f} s (once after an install)."
        )


# When a run ends: per study, how many of its paper's claims its numbers support, contradict or
# leave open, and where the claims table is (pandas is imported only here, at the end).
onsuccess:
    from corruptlab.report.claims import verdict_summary

    summary = verdict_summary(
        {
            study: f"results/{study}/tables/claims.parquet"
            for study in config["studies"]
            if "claims" in KIND[study].table_names
        }
    )
    if summary:
        print(summary, flush=True)
        print(
            "Each study's claims, figures and tables on one page: "
            "results/<study>/<study>.html; all studies in one file: "
            "uv run snakemake --report report.html",
            flush=True,
        )


cache_signatures(workflow.rules)
