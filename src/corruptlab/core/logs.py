"""Job logs: a Snakemake job's messages, warnings and progress bar go to its ``log:`` file."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn, TextIO


@contextlib.contextmanager
def job_log(path: str | Path | None) -> Iterator[TextIO]:
    """Send stderr and ``logging`` to ``path`` (appending) and yield the stream for tqdm."""
    if path is None:
        yield sys.stderr
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", buffering=1) as stream, contextlib.redirect_stderr(stream):
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            yield stream
            _log_loaded_modules()
        except BaseException:
            logging.getLogger("corruptlab").exception("job failed")
            raise
        finally:
            root.removeHandler(handler)


MODULES_LINE = "corruptlab modules loaded by"


def _log_loaded_modules() -> None:
    """Which corruptlab modules the job ran (a test holds them to the rule's derived code
    fingerprint, corruptlab.core.fingerprint), and the script that ran them."""
    main = getattr(sys.modules.get("__main__"), "__file__", None) or "?"
    loaded = sorted(m for m in sys.modules if m == "corruptlab" or m.startswith("corruptlab."))
    logging.getLogger("corruptlab").info("%s %s: %s", MODULES_LINE, main, " ".join(loaded))


def end_job() -> NoReturn:
    """End a job's process once its outputs are written and closed: run the ``atexit``
    handlers and flush the standard streams as a normal exit does, then exit with status 0
    without the interpreter's teardown (freeing every module, the native libraries'
    destructors). That teardown costs a job 1-2 s with torch, pandas and pyarrow loaded, about
    0.5 s with pandas and matplotlib (``benchmarks/job_startup.py``): more than many small
    jobs' work. Called as the last statement of every rule's script, never on a failure."""
    import atexit
    import os

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is not None:
            stream.flush()
    os._exit(0)
