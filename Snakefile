# corruptlab: how neural networks learn from corrupted data.
# Entry point: validates the config, then chains download -> prepare -> corrupt -> train ->
# evaluate -> aggregate. The rules live in workflow/rules/; the logic in src/corruptlab/.
import os
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

# the library, for this process and for every job's script (also under conda or SLURM)
_SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, _SRC)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [_SRC, os.environ.get("PYTHONPATH")]))


# the default config, unless --configfile names another (which then replaces it, not merges)
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/aggregate.smk"


localrules:
    all,
    download,


rule all:
    default_target: True
    input:
        all_targets(),
