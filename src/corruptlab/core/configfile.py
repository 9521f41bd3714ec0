"""Clear errors for a ``--configfile`` that Snakemake cannot read: a patch of Snakemake.

Why a patch. Snakemake reads every ``--configfile`` while it parses its command line
(``snakemake.settings.types.ConfigSettings`` calls ``snakemake.common.configfile.
load_configfile``), before it reads a profile's workflow or our Snakefile: no hook of Snakemake
(profile, Snakefile, ``onstart``, executor or logger plugin settings) runs earlier. There,
Snakemake 9.27:

- on a YAML syntax error raises ``WorkflowError("Config file is not valid JSON or YAML. In case
  of YAML, make sure to not mix whitespace and tab indentation.")``, dropping the YAML parser's
  file, line, column and problem;
- on a missing file lets ``FileNotFoundError`` escape (``open`` is called outside the ``try``
  that turns it into ``WorkflowError("Config file ... not found.")``), so the user gets a
  25-line traceback of Snakemake's internals.

``install()`` wraps ``snakemake.common.configfile._load_configfile`` (the one function both
paths go through) so that a missing file or a YAML error stops Snakemake with one message
(``corruptlab.core.stop.stop``: stderr, exit status 1, no traceback). Every other case,
valid files included, is Snakemake's own code unchanged: the wrapper only checks that the file
exists before, and re-reads the file with PyYAML to locate the error after Snakemake failed.

How it is installed. Snakemake imports every importable package named
``snakemake_logger_plugin_*`` while it builds its command-line parser (plugin discovery); the
package ``snakemake_logger_plugin_corruptlab`` (next to this one in ``src/``) calls
``install()`` on import. So the README's command, ``uv run snakemake --cores all --configfile
X``, gets these messages with nothing added to it.

The upstream fix (snakemake/common/configfile.py, ``_load_configfile``): open the file inside
the ``try`` that catches ``FileNotFoundError``, and put the ``yaml.YAMLError``'s own text (its
``problem_mark`` has the line and column) and the file name into the ``WorkflowError``. Then this
module and its plugin package can go.
"""

from __future__ import annotations

from pathlib import Path

from corruptlab.core.stop import shown, stop

TAB_HINT = "YAML indents with spaces only: replace the tab(s) at the start of the line with spaces"


def missing(path: Path, filetype: str = "Config") -> str:
    """The message for a config file that does not exist."""
    here = Path.cwd()
    return (
        f"{filetype.lower()} file {shown(path)} not found (looked in {here}); give --configfile "
        "the path of an existing YAML file, e.g. config/config.yaml or "
        "config/studies/label_noise.yaml"
    )


def yaml_problem(path: Path, filetype: str = "Config") -> str | None:
    """Where and why ``path`` is not valid YAML (line and column counted from 1), or None if
    PyYAML reads it."""
    import yaml

    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        lines = text.splitlines()
        mark, opened = err.problem_mark or err.context_mark, err.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        context = err.context or ""
        if context and opened is not None and opened is not mark:
            context += f" (opened at line {opened.line + 1}, column {opened.column + 1})"
        what = "; ".join(p for p in (context, err.problem) if p)
        shown_mark = (
            mark if mark and mark.line < len(lines) and lines[mark.line].strip() else opened
        )
        line = lines[shown_mark.line] if shown_mark and shown_mark.line < len(lines) else ""
        indent = line[: len(line) - len(line.lstrip())]
        hint = (
            TAB_HINT
            if "\t" in indent
            else ("check the indentation, and the brackets and quotes around this point")
        )
        excerpt = f"  {line.rstrip()}\n  {' ' * shown_mark.column}^\n" if line else ""
        return (
            f"{filetype.lower()} file {shown(path)}{where}: not valid YAML: {what}\n{excerpt}{hint}"
        )
    except yaml.YAMLError as err:
        return f"{filetype.lower()} file {shown(path)}: not valid YAML: {err}"
    return None


def install() -> None:
    """Wrap Snakemake's config-file reader (once) with the messages above."""
    from snakemake.common import configfile
    from snakemake_interface_common.exceptions import WorkflowError

    original = configfile._load_configfile
    if getattr(original, "corruptlab", False):
        return

    def load(configpath_or_obj, filetype="Config"):
        if not isinstance(configpath_or_obj, str | Path):
            return original(configpath_or_obj, filetype)
        path = Path(configpath_or_obj)
        if not path.is_file():
            stop(missing(path, filetype))
        try:
            return original(configpath_or_obj, filetype)
        except WorkflowError:
            problem = yaml_problem(path, filetype)
            if problem:
                stop(problem)
            raise

    load.corruptlab = True
    configfile._load_configfile = load
