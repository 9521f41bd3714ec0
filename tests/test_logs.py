"""corruptlab.core.logs.end_job: the scripts' fast exit keeps what a normal exit does that matters
(atexit handlers, buffered output, status 0), and every rule's script ends with it."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def test_end_job_runs_atexit_handlers_flushes_output_and_exits_0(tmp_path):
    marker = tmp_path / "atexit.txt"
    code = f"""
import atexit, sys
from corruptlab.core.logs import end_job
atexit.register(lambda: open({str(marker)!r}, "w").write("ran"))
sys.stdout.write("buffered, no newline")
sys.stderr.write("to stderr")
end_job()
print("never reached")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stdout == "buffered, no newline"
    assert proc.stderr == "to stderr"
    assert marker.read_text() == "ran"


def test_a_failing_script_never_reaches_end_job():
    code = "from corruptlab.core.logs import end_job\nraise RuntimeError('boom')\nend_job()\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1 and "RuntimeError: boom" in proc.stderr


def test_every_rule_script_ends_with_end_job_at_top_level():
    scripts = sorted(p for p in SCRIPTS.glob("*.py") if p.name != "_src.py")
    rules = re.findall(r'"\.\./\.\./scripts/([a-z_]+\.py)"', "".join(
        p.read_text() for p in (SCRIPTS.parent / "workflow" / "rules").glob("*.smk")
    ))  # fmt: skip
    assert {p.name for p in scripts} == set(rules)  # one script per step, each used by a rule
    for path in scripts:
        last = ast.parse(path.read_text()).body[-1]
        assert isinstance(last, ast.Expr) and isinstance(last.value, ast.Call), path.name
        assert ast.unparse(last.value) == "end_job()", path.name
