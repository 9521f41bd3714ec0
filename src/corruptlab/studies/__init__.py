"""Study kinds (a registry): each kind is one folder, ``corruptlab.studies.<kind>``, that owns
everything particular to it (``kind.py``: the kind's class, expansion and checks;
``schema.yaml``; ``tables.py``, ``claims.py``, ``figures.py``), and the generic code (config
validation, run expansion, the rules, the trainer, the evaluation loop, the tables and figures
machinery) asks it rather than branching on its name:

- ``schema``: the JSON schema of its own study keys (e.g. ``memorization:``), merged into the
  study schema for studies of this kind; ``check`` adds the checks a schema cannot express;
- ``expand``: its runs (by default the grid models x noise x optimizers x batch sizes x epochs x
  seeds), each a plain dict; ``run_extras`` adds kind-specific entries to each run (e.g. a
  measurement during training, or ``inputs``: files of other runs it consumes);
- ``eval_conditions``: test conditions besides the clean test set and the configured
  corruptions; ``steps``: per-run steps after training (``evaluate``, and ``ood`` scoring);
- ``tables``, ``figures``: what its aggregation writes, each a function and what it needs;
  a figure's ``when`` says which studies draw it (``figure_names``: those whose data it has);
  ``claims``: the paper's claims checked on its numbers.

A kind outside this package registers itself the same way from any module named in the config's
``study_kinds`` list (a module name or a ``.py`` file), loaded before the config is validated.

This module and the kind modules are light at import (no torch, no matplotlib): the Snakefile
imports them.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corruptlab.core.registry import Registry

BUILTIN = (
    "label_noise", "corruption_tta", "ood", "memorization", "no_gd", "distillation", "batchnorm"
)  # fmt: skip
# tables the workflow builds from every run's files (rules runs_table, predictions_table, ...)
PER_RUN_TABLES = ("runs", "predictions", "histories", "ood_runs")


@dataclass(frozen=True)
class Output:
    """A table or figure of a study: ``fn(tables, study)`` (a figure with ``files`` gets them as
    a third argument: {"dataset": path, "labels": {noise slug: path}}), computed from the
    study's tables ``needs`` (its own, or per-run tables such as ``runs``)."""

    fn: Callable[..., Any]
    needs: tuple[str, ...] = ()
    files: tuple[str, ...] = ()  # "dataset": the prepared dataset; "labels": noisy labels
    # whether a study (its validated config) has this output: a figure whose data would be
    # empty for the study is not drawn, and the workflow does not ask for it (None: always)
    when: Callable[[dict], bool] | None = None

    def applies(self, study: dict) -> bool:
        return self.when is None or bool(self.when(study))

    @property
    def caption(self) -> str:
        """What it shows (the report's caption): the first paragraph of ``fn``'s docstring, on
        one line ("" without one)."""
        doc = inspect.getdoc(self.fn)
        return " ".join(doc.split("\n\n")[0].split()) if doc else ""


class StudyKind:
    """The base of every kind: the defaults a kind overrides (see the module docstring)."""

    name: str = ""
    doc: str = ""
    schema: dict = {}
    tables: dict[str, Output] = {}
    figures: dict[str, Output] = {}
    claims: tuple[Callable[..., list[dict]], ...] = ()
    steps: tuple[str, ...] = ("evaluate",)
    uses_patience: bool = True  # False: runs train every epoch (patience is not checked)
    # its runs have soft targets (a teacher's logits per training example), which objectives
    # such as distillation train on (the kind distillation; the soft_targets rule writes them)
    soft_targets: bool = False

    def check(self, where: str, study: dict) -> list[str]:
        """Problems of a study (``where`` names it, e.g. ``studies.quick``), beyond its schema."""
        return []

    def run_extras(self, study: dict, run: dict) -> dict:
        """Entries added to one run dict of the grid (its model, noise, optimizer, epochs, seed
        are set)."""
        return {}

    def expand(self, name: str, study: dict, config: dict) -> list[dict]:
        """Every run of a (validated) study, in a stable order."""
        from corruptlab.core.grid import grid_runs

        return [{**run, **self.run_extras(study, run)} for run in grid_runs(name, study, config)]

    def eval_conditions(self, study: dict) -> list[dict]:
        """Test conditions besides the clean test set and the study's corruptions: dicts with
        ``name``, ``severity`` and ``family`` (``train``: the run's own training examples)."""
        return []

    def ood_sets(self, study: dict) -> list[dict]:
        """The OOD sets each run is scored against (kinds with the ``ood`` step)."""
        return []

    def ood_scores(self, study: dict) -> list[str]:
        return []

    @property
    def table_names(self) -> tuple[str, ...]:
        return ("runs", *self.tables)

    def figure_names(self, study: dict) -> tuple[str, ...]:
        """The figures a study (its validated config) draws: those whose ``when`` holds for it,
        in declaration order."""
        return tuple(name for name, out in self.figures.items() if out.applies(study))

    def output(self, target: str) -> Output:
        """The table or figure ``target`` of this kind."""
        outputs = {**self.tables, **self.figures}
        if target not in outputs:
            raise ValueError(
                f"study kind {self.name!r} has no table or figure {target!r}; "
                f"it has: {', '.join([*self.table_names, *self.figures])}"
            )
        return outputs[target]

    def needs(self, target: str) -> tuple[str, ...]:
        return self.output(target).needs


STUDIES: Registry[StudyKind] = Registry("study kind")


def register(kind: StudyKind) -> StudyKind:
    """Register an instance of a ``StudyKind`` subclass under its name (once; registering the
    same module twice, e.g. a reload, keeps the first)."""
    if kind.name in STUDIES:
        if type(STUDIES.get(kind.name)).__qualname__ != type(kind).__qualname__:
            raise ValueError(f"study kind {kind.name!r} is registered twice")
        return STUDIES.get(kind.name)
    return STUDIES.add(kind.name, kind)


def load(modules: Sequence[str] = ()) -> None:
    """Import the built-in kinds, then each of ``modules`` (a module name, or a path to a
    ``.py`` file) so that the kinds they define register themselves."""
    for name in BUILTIN:
        importlib.import_module(f"corruptlab.studies.{name}")
    for spec in modules:
        load_module(spec)


def load_kind(kind: str, modules: Sequence[str] = ()) -> StudyKind:
    """Study kind ``kind``, importing only its own module: a built-in kind's, else the config's
    ``modules`` (which define the kinds of one's own). A job that computes one study's tables
    imports no other kind's code (its code fingerprint covers its kind's module alone)."""
    if kind not in STUDIES:
        if kind in BUILTIN:
            importlib.import_module(f"corruptlab.studies.{kind}")
        else:
            for spec in modules:
                load_module(spec)
    return STUDIES.get(kind)


def load_module(spec: str):
    """Import a module by name or from a ``.py`` file (once); raises ``ImportError`` with the
    reason."""
    if not spec.endswith(".py"):
        return importlib.import_module(spec)
    path = Path(spec).resolve()
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    name = f"corruptlab_study_kind_{path.stem}_{digest}"  # one per file
    if name in sys.modules:
        return sys.modules[name]
    if not path.is_file():
        raise ImportError(f"no such file: {spec}")
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def schema_beside(module_file: str) -> dict:
    """The JSON schema of a kind's own study keys: ``schema.yaml`` in the folder of the kind's
    module ``module_file`` (its ``__file__``), e.g. studies/ood/schema.yaml."""
    import yaml

    path = Path(module_file).resolve().parent / "schema.yaml"
    return yaml.safe_load(path.read_text())


def kind_source(kind: str) -> str:
    """The file defining study kind ``kind`` (for its code fingerprint)."""
    module = sys.modules[type(STUDIES.get(kind)).__module__]
    return str(Path(module.__file__).resolve())
