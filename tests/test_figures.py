"""Figures (corruptlab.report.figures) drawn from a hand-made selection table, and the study
kind."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from records import make_noise, make_record, output, runs_row, selection_table  # noqa: E402
from scipy import stats as sps  # noqa: E402

from corruptlab.report.style import model_color, model_order, save_figure  # noqa: E402
from corruptlab.studies import STUDIES  # noqa: E402
from corruptlab.train.models import MODELS  # noqa: E402

MODELS_USED = ("conv4", "perceptron", "mlp1")  # deliberately not in registry order
LRS = (0.1, 1.0)
SEEDS = 3
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# (model, noise key) -> (winning lr, clean test accuracy of the winner per seed); the losing lr
# has validation accuracy 0.5 and test accuracy 0.1, so it must show up nowhere
UNIFORM = {
    ("perceptron", 0): (1.0, [0.90, 0.88, 0.89]),
    ("perceptron", 5): (0.1, [0.70, 0.72, 0.77]),
    ("perceptron", 10): (0.1, [0.50, 0.55, 0.51]),
    ("mlp1", 0): (0.1, [0.96, 0.97, 0.95]),
    ("mlp1", 5): (1.0, [0.90, 0.91, 0.86]),
    ("mlp1", 10): (1.0, [0.80, 0.82, 0.87]),
    ("conv4", 0): (1.0, [0.99, 0.98, 0.99]),
    ("conv4", 5): (1.0, [0.98, 0.97, 0.97]),
    ("conv4", 10): (0.1, [0.95, 0.96, 0.93]),
}
STRUCTURED = {
    ("perceptron", "s5"): (0.1, [0.60, 0.62, 0.61]),
    ("mlp1", "s5"): (0.1, [0.75, 0.74, 0.79]),
    ("conv4", "s5"): (1.0, [0.91, 0.92, 0.96]),
}


def _noise(key) -> dict:
    return make_noise(5, 0.5) if key == "s5" else make_noise(key)


def make_selection(grid: dict) -> pd.DataFrame:
    rows = []
    for (model, key), (winner, accs) in grid.items():
        for lr in LRS:
            for seed in range(SEEDS):
                won = lr == winner
                rec = make_record(
                    model,
                    _noise(key),
                    lr,
                    seed,
                    best_val=0.9 if won else 0.5,
                    study="fig_test",
                    best_epoch=4,
                )
                accuracy = accs[seed] if won else 0.1
                rows.append(runs_row(rec, accuracy, nll=0.3, entropy=0.2, ece=0.05))
    return selection_table(pd.DataFrame(rows))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def uniform_sel() -> pd.DataFrame:
    return make_selection(UNIFORM)


@pytest.fixture(scope="module")
def both_sel() -> pd.DataFrame:
    return make_selection({**UNIFORM, **STRUCTURED})


def registry_order(names) -> list[str]:
    registered = MODELS.names()
    return sorted(names, key=registered.index)


def lines_by_label(ax) -> dict:
    return {line.get_label(): line for line in ax.lines}


def panel(fig, kind: str):
    axes = [ax for ax in fig.axes if kind in ax.get_title()]
    assert len(axes) == 1, [ax.get_title() for ax in fig.axes]
    return axes[0]


# ---------------------------------------------------------------------------------- registry


def test_study_figures_are_registered_and_drawn_from_selection():
    kind = STUDIES.get("label_noise")
    assert set(kind.figures) == {"accuracy_vs_alpha", "selected_lr_vs_alpha"}
    for name in kind.figures:
        assert callable(kind.output(name).fn) and not kind.output(name).files
        assert kind.needs(name) == ("selection",)


def test_unknown_target_lists_known_tables_and_figures():
    kind = STUDIES.get("label_noise")
    with pytest.raises(ValueError, match="no_such_target") as err:
        kind.needs("no_such_target")
    message = str(err.value)
    for name in (
        "runs",
        "summary",
        "selection",
        "claims",
        "accuracy_vs_alpha",
        "selected_lr_vs_alpha",
    ):
        assert name in message, name
    assert "label_noise" in message


# -------------------------------------------------------------------------- every figure


@pytest.mark.parametrize("name", STUDIES.get("label_noise").figures)
def test_one_panel_per_noise_family(name, uniform_sel, both_sel):
    fig = output("label_noise", name)({"selection": uniform_sel})
    assert isinstance(fig, plt.Figure)
    assert len(fig.axes) == 1
    assert "uniform" in fig.axes[0].get_title()
    fig2 = output("label_noise", name)({"selection": both_sel})
    assert len(fig2.axes) == 2
    titles = sorted(ax.get_title() for ax in fig2.axes)
    assert "structured" in titles[0] and "0.5" in titles[0]
    assert "uniform" in titles[1]
    for ax in [*fig.axes, *fig2.axes]:
        assert "alpha" in ax.get_xlabel()
        assert sorted(lines_by_label(ax)) == sorted(MODELS_USED)
        # model colours are the same in every panel of every figure
        for model, line in lines_by_label(ax).items():
            assert line.get_color() == model_color(model)


@pytest.mark.parametrize("name", STUDIES.get("label_noise").figures)
def test_clean_only_selection_gives_one_panel(name):
    clean = {k: v for k, v in UNIFORM.items() if k[1] == 0}
    fig = output("label_noise", name)({"selection": make_selection(clean)})
    assert len(fig.axes) == 1
    assert "clean" in fig.axes[0].get_title()
    for line in fig.axes[0].lines:
        assert list(line.get_xdata()) == [0.0]


# --------------------------------------------------------------------- accuracy_vs_alpha


def expected_accuracy(grid: dict, model: str, keys) -> tuple[list, list, list]:
    means, lows, highs = [], [], []
    for key in keys:
        accs = grid[(model, key)][1]
        ci = sps.ttest_1samp(accs, 0.0).confidence_interval(0.95)
        means.append(100 * np.mean(accs))
        # the t interval clipped to the accuracy's range [0, 1]
        lows.append(100 * max(ci.low, 0.0))
        highs.append(100 * min(ci.high, 1.0))
    return means, lows, highs


def test_accuracy_lines_are_selected_test_accuracy_in_percent(uniform_sel):
    fig = output("label_noise", "accuracy_vs_alpha")({"selection": uniform_sel})
    ax = fig.axes[0]
    assert "accuracy" in ax.get_ylabel() and "%" in ax.get_ylabel()
    assert [line.get_label() for line in ax.lines] == registry_order(MODELS_USED)
    assert len(ax.collections) == len(MODELS_USED)  # one CI band per model
    for line, band in zip(ax.lines, ax.collections, strict=True):
        model = line.get_label()
        means, lows, highs = expected_accuracy(UNIFORM, model, (0, 5, 10))
        assert list(line.get_xdata()) == [0.0, 5.0, 10.0]
        np.testing.assert_allclose(line.get_ydata(), means, atol=1e-9)
        # the band spans [low, high] of the 95% CI at each alpha, never above 100%
        verts = band.get_paths()[0].vertices
        for x, low, high in zip((0, 5, 10), lows, highs, strict=True):
            ys = verts[np.isclose(verts[:, 0], x), 1]
            assert ys.min() == pytest.approx(low, abs=1e-9)
            assert ys.max() == pytest.approx(high, abs=1e-9)
    assert fig.axes[-1].get_legend() is not None
    title = fig.get_suptitle()
    assert "mnist5k" in title and f"{SEEDS} seeds" in title


def test_accuracy_structured_panel_has_clean_point_and_its_own_values(both_sel):
    fig = output("label_noise", "accuracy_vs_alpha")({"selection": both_sel})
    ax = panel(fig, "structured")
    for model, line in lines_by_label(ax).items():
        assert list(line.get_xdata()) == [0.0, 5.0]
        clean, noisy = UNIFORM[(model, 0)][1], STRUCTURED[(model, "s5")][1]
        expected = [100 * np.mean(clean), 100 * np.mean(noisy)]
        np.testing.assert_allclose(line.get_ydata(), expected, atol=1e-9)
    assert "accuracy" in fig.axes[0].get_ylabel()


def test_x_data_is_sorted_even_when_selection_rows_are_not(uniform_sel):
    shuffled = uniform_sel.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert not shuffled["alpha_axis"].is_monotonic_increasing
    fig = output("label_noise", "accuracy_vs_alpha")({"selection": shuffled})
    for model, line in lines_by_label(fig.axes[0]).items():
        assert list(line.get_xdata()) == [0.0, 5.0, 10.0]
        np.testing.assert_allclose(
            line.get_ydata(), expected_accuracy(UNIFORM, model, (0, 5, 10))[0], atol=1e-9
        )


# ------------------------------------------------------------------ selected_lr_vs_alpha


def test_selected_lr_lines_follow_the_winning_lr(uniform_sel):
    fig = output("label_noise", "selected_lr_vs_alpha")({"selection": uniform_sel})
    ax = fig.axes[0]
    assert "learning rate" in ax.get_ylabel()
    assert ax.get_yscale() == "log"
    factors = []
    for model in registry_order(MODELS_USED):
        line = lines_by_label(ax)[model]
        assert list(line.get_xdata()) == [0.0, 5.0, 10.0]
        winners = np.array([UNIFORM[(model, k)][0] for k in (0, 5, 10)])
        ratio = np.asarray(line.get_ydata()) / winners
        # one small constant multiplicative offset per model keeps markers apart
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-12)
        assert 10**-0.06 - 1e-12 <= ratio[0] <= 10**0.06 + 1e-12
        factors.append(ratio[0])
    assert factors == sorted(factors) and len(set(factors)) == len(factors)


# -------------------------------------------------------------------------------- colours


def test_model_color_is_stable_and_distinct():
    names = MODELS.names()[:10]
    colors = [model_color(n) for n in names]
    assert colors == [model_color(n) for n in names]  # same on every call
    assert len(set(colors)) == len(colors)  # distinct per registered model
    assert all(len(c) == 4 and all(0.0 <= v <= 1.0 for v in c) for c in colors)
    assert model_color("not_a_model") == model_color("also_not_a_model")


def test_model_order_follows_the_registry():
    assert model_order(["conv4", "mlp1", "perceptron", "mlp1"]) == registry_order(
        ["conv4", "mlp1", "perceptron"]
    )
    assert model_order(["zzz", "conv4", "aaa"]) == ["conv4", "aaa", "zzz"]


# ----------------------------------------------------------------------------------- saving


def _no_partials(directory) -> bool:
    return not any(name.endswith(".part") for name in os.listdir(directory))


def test_save_figure_writes_png_and_pdf_atomically(tmp_path, uniform_sel):
    fig = output("label_noise", "accuracy_vs_alpha")({"selection": uniform_sel})
    out = tmp_path / "figures"  # created on demand
    png, pdf = out / "acc.png", out / "acc.pdf"
    save_figure(fig, str(png), str(pdf))
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert png.stat().st_size > 1000 and pdf.stat().st_size > 1000
    assert sorted(os.listdir(out)) == ["acc.pdf", "acc.png"]
    assert _no_partials(out)
    assert not plt.fignum_exists(fig.number)  # closed after saving


def test_save_figure_failure_leaves_previous_output_and_no_partial(tmp_path, uniform_sel):
    png, pdf = tmp_path / "f.png", tmp_path / "f.pdf"
    pdf.write_bytes(b"old pdf")
    fig = output("label_noise", "selected_lr_vs_alpha")({"selection": uniform_sel})
    real_savefig = fig.savefig

    def failing_savefig(path, format=None, **kw):  # noqa: A002 (matplotlib's keyword)
        if format == "pdf":
            with open(path, "wb") as f:
                f.write(b"%PDF-half")
            raise OSError("disk full")
        return real_savefig(path, format=format, **kw)

    fig.savefig = failing_savefig
    with pytest.raises(OSError, match="disk full"):
        save_figure(fig, str(png), str(pdf))
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert pdf.read_bytes() == b"old pdf"
    assert _no_partials(tmp_path)
