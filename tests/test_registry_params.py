"""Registry, declared parameters, number formatting, seed derivation and code fingerprints."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from corruptlab.core import fingerprint as fp
from corruptlab.core.params import Param, fmt_number, slug
from corruptlab.core.registry import Registry, UnknownNameError, describe
from corruptlab.core.seeding import derive_seed

# ----------------------------------------------------------------------------------- Registry


def make_registry() -> Registry:
    reg: Registry = Registry("widget")

    @reg.register("alpha")
    def alpha():
        """First widget.

        More text that is not part of the description.
        """

    reg.add("beta", 2)
    return reg


def test_registry_register_add_get():
    reg = make_registry()
    assert reg.names() == ["alpha", "beta"]
    assert list(reg) == ["alpha", "beta"]
    assert len(reg) == 2
    assert "alpha" in reg and "gamma" not in reg
    assert reg.get("beta") == 2
    assert reg.get("alpha").__name__ == "alpha"  # the decorator returns the function
    assert [name for name, _ in reg.items()] == ["alpha", "beta"]
    assert repr(reg) == "Registry('widget', ['alpha', 'beta'])"


def test_registry_duplicate_registration_raises():
    reg = make_registry()
    with pytest.raises(ValueError, match=r"^widget 'alpha' is registered twice$"):
        reg.add("alpha", 3)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("beta")(lambda: None)
    assert reg.get("beta") == 2  # the first entry is kept
    assert len(reg) == 2


def test_unknown_name_lists_accepted_names():
    reg = make_registry()
    with pytest.raises(UnknownNameError) as err:
        reg.get("gamma")
    assert str(err.value) == "unknown widget 'gamma'; accepted: alpha, beta"
    assert isinstance(err.value, KeyError)  # callers may catch KeyError
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_describe_is_the_first_docstring_line():
    reg = make_registry()
    assert describe(reg.get("alpha")) == "First widget."
    assert describe(lambda: None) == ""


# -------------------------------------------------------------------------------------- Param

ALPHA = Param("alpha", "a", int, 0, None, doc="copies")
DELTA = Param("delta", "d", float, 0.0, 1.0, doc="probability")
FREE = Param("x", "x", float)


@pytest.mark.parametrize("value", [0, 1, 100, 10**12])
def test_int_param_accepts(value):
    assert ALPHA.check(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "got True; accepted: an integer in [0, inf]"),
        (False, "got False; accepted: an integer in [0, inf]"),
        (2.0, "got 2.0; accepted: an integer in [0, inf]"),
        (2.5, "got 2.5; accepted: an integer in [0, inf]"),
        (-1, "got -1; accepted: an integer in [0, inf]"),
        ("3", "got '3'; accepted: an integer in [0, inf]"),
        (None, "got None; accepted: an integer in [0, inf]"),
    ],
    ids=["true", "false", "float-integral", "float", "below", "string", "none"],
)
def test_int_param_rejects(value, expected):
    assert ALPHA.check(value) == expected


@pytest.mark.parametrize("value", [0, 0.0, 0.5, 1, 1.0, 1e-9])
def test_float_param_accepts_ints_and_floats_in_range(value):
    assert DELTA.check(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "got True; accepted: a number in [0, 1]"),
        (float("nan"), "got nan; accepted: a number in [0, 1]"),
        (float("inf"), "got inf; accepted: a number in [0, 1]"),
        (1.5, "got 1.5; accepted: a number in [0, 1]"),
        (-0.1, "got -0.1; accepted: a number in [0, 1]"),
        (1.0000001, "got 1.0000001; accepted: a number in [0, 1]"),
        ("0.5", "got '0.5'; accepted: a number in [0, 1]"),
    ],
    ids=["bool", "nan", "inf", "above", "below", "just-above", "string"],
)
def test_float_param_rejects(value, expected):
    assert DELTA.check(value) == expected


def test_unbounded_param():
    assert FREE.accepted() == "a number in [-inf, inf]"
    assert FREE.check(-1e300) is None
    assert FREE.check(float("-inf")) == "got -inf; accepted: a number in [-inf, inf]"
    assert FREE.default is None  # no default: required


def test_accepted_formats_bounds_compactly():
    assert Param("lr", "lr", float, 0.0, None).accepted() == "a number in [0, inf]"
    assert Param("m", "m", float, 0.0, 0.999).accepted() == "a number in [0, 0.999]"
    assert Param("k", "k", int, 1, 64).accepted() == "an integer in [1, 64]"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (5, "5"),
        (5.0, "5"),
        (0, "0"),
        (0.0, "0"),
        (100, "100"),
        (0.1, "0.1"),
        (0.5, "0.5"),
        (1e-5, "1e-05"),
        (0.001, "0.001"),
        (2.5e-4, "0.00025"),
        (-3.0, "-3"),
        (123456789, "123456789"),
    ],
)
def test_fmt_number(value, text):
    assert fmt_number(value) == text


def test_slug_follows_declared_order():
    params = (ALPHA, DELTA)
    assert slug("structured", params, {"delta": 0.5, "alpha": 2}) == "structured-a2-d0.5"
    assert slug("none", (), {}) == "none"
    with pytest.raises(KeyError):
        slug("structured", params, {"alpha": 2})


# -------------------------------------------------------------------------------- derive_seed


def test_derive_seed_is_pinned():
    # stable across processes, platforms and versions: these values must never change
    assert derive_seed("study", 0, "labels") == 6461471585238786575
    assert derive_seed("labels", 0, "study") == 6017906698572709611
    assert derive_seed() == 1449310910991872227


def test_derive_seed_properties():
    a = derive_seed("quick", 3, "init")
    assert a == derive_seed("quick", 3, "init")
    assert isinstance(a, int) and 0 <= a < 2**63
    assert derive_seed("quick", "init", 3) != a  # order matters
    assert derive_seed("quick", "3", "init") != a  # 3 and "3" are different parts
    assert derive_seed("quick", 4, "init") != a
    assert derive_seed("quick3", "init") != derive_seed("quick", "3init")
    seeds = {derive_seed("s", k) for k in range(1000)}
    assert len(seeds) == 1000


def test_derive_seed_is_stable_across_processes():
    code = (
        "from corruptlab.core.seeding import derive_seed; print(derive_seed('study', 0, 'labels'))"
    )
    for hashseed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        assert out.stdout.strip() == "6461471585238786575"


# -------------------------------------------------------------------------------- fingerprint


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """A package directory with two fake modules; the digest cache is cleared around the test."""
    (tmp_path / "alpha.py").write_text("X = 1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "beta.py").write_text("Y = 2\n")
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "sub" / "__init__.py").write_text("")
    fp._module_digest.cache_clear()
    fp._module_imports.cache_clear()
    monkeypatch.setattr(fp, "PACKAGE_DIR", tmp_path)
    yield tmp_path
    fp._module_digest.cache_clear()
    fp._module_imports.cache_clear()


def test_fingerprint_is_short_and_stable(fake_package):
    a = fp.fingerprint("alpha")
    assert len(a) == 16 and int(a, 16) >= 0
    assert fp.fingerprint("alpha") == a
    fp._module_digest.cache_clear()
    assert fp.fingerprint("alpha") == a  # recomputed from the same text


def test_fingerprint_ignores_order_and_repeats(fake_package):
    both = fp.fingerprint("alpha", "sub.beta")
    assert fp.fingerprint("sub.beta", "alpha") == both
    assert fp.fingerprint("alpha", "sub.beta", "alpha") == both
    assert both != fp.fingerprint("alpha") != fp.fingerprint("sub.beta")


def test_fingerprint_changes_when_a_module_changes(fake_package):
    before = fp.fingerprint("alpha", "sub.beta")
    only_beta = fp.fingerprint("sub.beta")
    (fake_package / "alpha.py").write_text("X = 1  # edited\n")
    fp._module_digest.cache_clear()
    after = fp.fingerprint("alpha", "sub.beta")
    assert after != before
    assert fp.fingerprint("sub.beta") == only_beta  # an unrelated module is unaffected
    (fake_package / "alpha.py").write_text("X = 1\n")
    fp._module_digest.cache_clear()
    assert fp.fingerprint("alpha", "sub.beta") == before  # content, not mtime


def test_fingerprint_missing_module_raises(fake_package):
    with pytest.raises(FileNotFoundError, match=r"no module corruptlab\.gamma at .*gamma\.py"):
        fp.fingerprint("alpha", "gamma")


def test_fingerprint_of_real_modules():
    fp._module_digest.cache_clear()
    assert len(fp.fingerprint("data.noise", "core.params")) == 16
    with pytest.raises(FileNotFoundError, match="no module corruptlab.no_such_module"):
        fp.fingerprint("no_such_module")


def test_derived_modules_follow_every_kind_of_import(fake_package):
    """Module-level and function-level imports, ``from package import module``, relative imports
    and packages on the way count; TYPE_CHECKING blocks and other packages do not."""
    (fake_package / "sub" / "gamma.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import beta\n"
        "if TYPE_CHECKING:\n"
        "    from corruptlab import delta\n"
    )
    (fake_package / "sub" / "beta.py").write_text(
        "import numpy\n\ndef f():\n    from ..alpha import X\n    return X\n"
    )
    (fake_package / "delta.py").write_text("D = 4\n")
    script = "import os\nfrom corruptlab.sub import gamma\n"
    assert fp.reached_modules(script) == ["", "alpha", "sub", "sub.beta", "sub.gamma"]
    assert fp.reached_modules("import corruptlab.delta as d\n") == ["", "delta"]
    assert fp.reached_modules("def main():\n    from corruptlab.sub.beta import f\n") == [
        "",
        "alpha",
        "sub",
        "sub.beta",
    ]
    assert fp.reached_modules("import torch\n") == []


def test_a_derived_fingerprint_changes_with_a_module_reached_late(fake_package, tmp_path_factory):
    (fake_package / "sub" / "beta.py").write_text("def f():\n    from corruptlab import alpha\n")
    script = tmp_path_factory.mktemp("scripts") / "job.py"
    script.write_text("from corruptlab.sub.beta import f\n")
    before = fp.script_fingerprint(script)
    (fake_package / "alpha.py").write_text("X = 2\n")  # reached only inside beta.f
    fp._module_digest.cache_clear()
    assert fp.script_fingerprint(script) != before
    (fake_package / "delta.py").write_text("D = 5\n")  # not reached
    fp._module_digest.cache_clear()
    after = fp.script_fingerprint(script)
    (fake_package / "delta.py").write_text("D = 6\n")
    fp._module_digest.cache_clear()
    assert fp.script_fingerprint(script) == after


def test_a_module_imported_by_name_adds_its_text_and_its_reach(fake_package, tmp_path_factory):
    """A job that imports a module at run time (a study kind's) fingerprints its file too."""
    folder = tmp_path_factory.mktemp("kind")
    script, kind = folder / "job.py", folder / "kind.py"
    script.write_text("import corruptlab.sub.beta\n")
    kind.write_text("from corruptlab import alpha\n")
    alone = fp.script_fingerprint(script)
    with_kind = fp.script_fingerprint(script, kind)
    assert with_kind != alone
    kind.write_text("from corruptlab import alpha  # edited\n")
    assert fp.script_fingerprint(script, kind) != with_kind  # its own text
    edited = fp.script_fingerprint(script, kind)
    (fake_package / "alpha.py").write_text("X = 3\n")  # a module only the kind reaches
    fp._module_digest.cache_clear()
    assert fp.script_fingerprint(script, kind) != edited
    assert fp.script_fingerprint(script) == alone


def test_an_import_of_a_missing_module_is_an_error(fake_package):
    with pytest.raises(FileNotFoundError, match=r"no module corruptlab\.nothing"):
        fp.reached_modules("import corruptlab.nothing\n")


def test_every_script_reaches_real_modules():
    """The workflow's scripts, as the Snakefile derives their fingerprints."""
    from conftest import REPO

    for script in sorted((REPO / "scripts").glob("*.py")):
        modules = fp.script_modules(script)
        if script.stem != "_src":
            assert "core.logs" in modules, script  # every script ends with logs.end_job
            assert len(fp.script_fingerprint(script)) == 16
    train = fp.script_modules(REPO / "scripts" / "train.py")
    assert {"train.training", "train.models", "data.datasets", "core.seeding"} <= set(train)
