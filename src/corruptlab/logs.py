"""Job logs: a Snakemake job's messages, warnings and progress bar go to its ``log:`` file."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


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
        except BaseException:
            logging.getLogger("corruptlab").exception("job failed")
            raise
        finally:
            root.removeHandler(handler)
