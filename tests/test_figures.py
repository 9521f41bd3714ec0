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
from records import make_noise, make_record, output, runs_row  # noqa: E402
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


FLIP = {  # flip noise at p = 0.4 (Arpit et al.'s randY), keys ("flip", p)
    ("perceptron", ("flip", 0.4)): (0.1, [0.40, 0.45, 0.41]),
    ("mlp1", ("flip", 0.4)): (1.0, [0.60, 0.62, 0.58]),
    ("conv4", ("flip", 0.4)): (1.0, [0.80, 0.85, 0.81]),
}
FLIP_MORE = {  # a second p: the figure draws lines over p
    ("perceptron", ("flip", 0.8)): (1.0, [0.20, 0.22, 0.21]),
    ("mlp1", ("flip", 0.8)): (0.1, [0.30, 0.35, 0.31]),
    ("conv4", ("flip", 0.8)): (0.1, [0.50, 0.50, 0.56]),
}


def _noise(key) -> dict:
    if isinstance(key, tuple):
        return {"kind": key[0], "p": key[1]}
    return make_noise(5, 0.5) if key == "s5" else make_noise(key)


def make_selection(grid: dict) -> pd.DataFrame:
    return make_tables(grid)["selection"]


def make_tables(grid: dict) -> dict[str, pd.DataFrame]:
    """The summary and selection tables of runs at ``grid`` (both lrs of LRS per setting)."""
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
    return tables_of(pd.DataFrame(rows))


def tables_of(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    tables = {"runs": runs}
    tables["summary"] = output("label_noise", "summary")(tables, {})
    tables["selection"] = output("label_noise", "selection")(tables, {})
    return tables


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
    assert set(kind.figures) == {"accuracy_vs_alpha", "accuracy_vs_p", "selected_lr_vs_alpha"}
    for name in kind.figures:
        assert callable(kind.output(name).fn) and not kind.output(name).files
        assert kind.needs(name)[0] == "selection"
    # the lr figure colours each cell by its place in the lr grid, which the summary holds
    assert kind.needs("selected_lr_vs_alpha") == ("selection", "summary")


def _study(noise: list[dict], lrs: list[float]) -> dict:
    return {"noise": noise, "optimizers": [{"name": "adam", "lr": lrs}]}


UNIFORM_SPEC = {"kind": "uniform", "alpha": [0, 2]}
FLIP_SPEC = {"kind": "flip", "p": 0.4}


@pytest.mark.parametrize(
    ("noise", "lrs", "expected"),
    [
        # the newcomer's study: uniform alpha [0, 2] and flip p 0.4, one lr
        ([UNIFORM_SPEC, FLIP_SPEC], [0.001], ("accuracy_vs_alpha", "accuracy_vs_p")),
        ([{"kind": "none"}, UNIFORM_SPEC], [0.001], ("accuracy_vs_alpha",)),
        ([FLIP_SPEC], [0.001, 0.01], ("accuracy_vs_p", "selected_lr_vs_alpha")),
        ([{"kind": "randx", "p": [0.5, 1.0]}], [0.001], ("accuracy_vs_p",)),
        (
            [{"kind": "none"}, FLIP_SPEC],
            [0.1, 1.0],
            ("accuracy_vs_alpha", "accuracy_vs_p", "selected_lr_vs_alpha"),
        ),
    ],
)
def test_a_study_draws_the_figures_its_noise_and_lr_grid_give_data_for(noise, lrs, expected):
    assert STUDIES.get("label_noise").figure_names(_study(noise, lrs)) == expected


def test_one_lr_in_two_optimizer_entries_is_still_one_lr():
    study = {
        "noise": [FLIP_SPEC],
        "optimizers": [{"name": "adam", "lr": 0.001}, {"name": "sgd", "lr": [0.001]}],
    }
    assert STUDIES.get("label_noise").figure_names(study) == ("accuracy_vs_p",)


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


@pytest.mark.parametrize("name", ["accuracy_vs_alpha"])
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


@pytest.mark.parametrize("name", ["accuracy_vs_alpha"])
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


def test_selected_lr_cells_show_the_winning_lr_at_its_true_value():
    tables = make_tables({**UNIFORM, **FLIP})
    fig = output("label_noise", "selected_lr_vs_alpha")(tables)
    ax = fig.axes[0]
    assert not ax.lines  # no lines drawn at offset learning rates: a table of the values
    columns = [t.get_text() for t in ax.get_xticklabels()]
    assert columns == ["none", "uniform\n$\\alpha$=5", "uniform\n$\\alpha$=10", "flip\np=0.4"]
    models = [t.get_text() for t in ax.get_yticklabels()]
    assert models == registry_order(MODELS_USED)
    keys = [0, 5, 10, ("flip", 0.4)]
    grid = {**UNIFORM, **FLIP}
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t for t in ax.texts}
    assert len(cells) == len(models) * len(keys)  # every model and noise setting, flip included
    image = ax.get_images()[0].get_array()
    for i, model in enumerate(models):
        for j, key in enumerate(keys):
            winner = grid[(model, key)][0]
            assert cells[i, j].get_text() == f"{winner:g}"
            assert image[i, j] == LRS.index(winner)  # coloured by its place in the lr grid
    colorbar = fig.axes[1]
    assert [t.get_text() for t in colorbar.get_yticklabels()] == ["0.1", "1"]
    assert "learning rate" in colorbar.get_ylabel()


def test_two_batch_sizes_get_a_line_and_a_row_each_never_one_mixed_line():
    runs = make_tables({**UNIFORM, **FLIP})["runs"]
    small = runs.assign(
        batch_size=64, accuracy=runs["accuracy"] - 0.05, run_id=runs["run_id"] + "-bs64"
    )
    tables = tables_of(pd.concat([runs, small], ignore_index=True))
    fig = output("label_noise", "accuracy_vs_alpha")(tables)
    lines = lines_by_label(fig.axes[0])
    assert sorted(lines) == sorted(f"{m}, bs={b}" for m in MODELS_USED for b in (64, 128))
    for model in MODELS_USED:
        big, little = lines[f"{model}, bs=128"], lines[f"{model}, bs=64"]
        assert list(big.get_xdata()) == [0.0, 5.0, 10.0] == list(little.get_xdata())
        np.testing.assert_allclose(
            np.asarray(big.get_ydata()) - np.asarray(little.get_ydata()), 5.0, atol=1e-9
        )
        # the model's colour; the batch size's line style (the first in order solid)
        assert big.get_color() == little.get_color()
        assert (little.get_linestyle(), big.get_linestyle()) == ("-", "--")
    fig = output("label_noise", "accuracy_vs_p")(tables)
    assert len(fig.axes[0].containers) == 2 * len(MODELS_USED)  # a point series per line
    fig = output("label_noise", "selected_lr_vs_alpha")(tables)
    rows = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert rows == [f"{m}, bs={b}" for m in registry_order(MODELS_USED) for b in (64, 128)]


# ------------------------------------------------------------------------------ accuracy_vs_p


def test_accuracy_vs_alpha_names_the_flip_runs_it_leaves_out():
    sel = make_selection({**UNIFORM, **FLIP})
    fig = output("label_noise", "accuracy_vs_alpha")({"selection": sel})
    assert "not shown: flip p=0.4 (in accuracy_vs_p)" in fig.get_suptitle()
    fig = output("label_noise", "accuracy_vs_alpha")({"selection": make_selection(UNIFORM)})
    assert "not shown" not in fig.get_suptitle()


def test_clean_runs_beside_a_family_with_its_own_alpha_0_are_named_not_mixed_in():
    # uniform noise at alpha = 0 (clean labels too) beside the runs of noise none
    runs = make_tables({**UNIFORM, **FLIP})["runs"]
    zero = runs[runs["noise_kind"] == "none"].assign(noise_kind="uniform", alpha=0.0)
    zero = zero.assign(accuracy=zero["accuracy"] - 0.1, run_id=zero["run_id"] + "-a0")
    tables = tables_of(pd.concat([runs, zero], ignore_index=True))
    fig = output("label_noise", "accuracy_vs_alpha")(tables)
    for model, line in lines_by_label(fig.axes[0]).items():
        assert list(line.get_xdata()) == [0.0, 5.0, 10.0]  # one point at alpha = 0, not two
        expected = np.mean(UNIFORM[(model, 0)][1]) - 0.1  # the uniform alpha = 0 runs'
        assert line.get_ydata()[0] == pytest.approx(100 * expected)
    assert "noise none (each panel has its own alpha = 0)" in fig.get_suptitle()
    # flip's p = 0 reference: the runs of noise none, which are clean labels
    fig = output("label_noise", "accuracy_vs_p")(tables)
    assert "p = 0: clean labels" in fig.get_suptitle()


def test_one_flip_p_gives_points_with_ci_bars_beside_the_clean_reference():
    sel = make_selection({**UNIFORM, **FLIP})
    fig = output("label_noise", "accuracy_vs_p")({"selection": sel})
    (ax,) = fig.axes
    assert "flip" in ax.get_title() and "(p)" in ax.get_xlabel()
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["p = 0\n(clean labels)", "p = 0.4"]  # categories, not p's values
    assert "p = 0: clean labels" in fig.get_suptitle()
    containers = {c.get_label(): c for c in ax.containers}
    assert list(containers) == registry_order(MODELS_USED)
    for model, bars in containers.items():
        x, y = (np.asarray(v, float) for v in bars.lines[0].get_data())
        # one point per category; models side by side within it, never past the next
        assert np.all(np.abs(np.asarray(x) - [0, 1]) <= 0.25 + 1e-12)
        means, lows, highs = [], [], []
        for key in (0, ("flip", 0.4)):
            accs = ({**UNIFORM, **FLIP})[(model, key)][1]
            ci = sps.ttest_1samp(accs, 0.0).confidence_interval(0.95)
            means.append(100 * np.mean(accs))
            lows.append(100 * max(ci.low, 0.0))
            highs.append(100 * min(ci.high, 1.0))
        np.testing.assert_allclose(y, means, atol=1e-9)
        segments = bars.lines[2][0].get_segments()  # the CI bars
        np.testing.assert_allclose([s[:, 1].min() for s in segments], lows, atol=1e-9)
        np.testing.assert_allclose([s[:, 1].max() for s in segments], highs, atol=1e-9)
    xs = sorted(c.lines[0].get_data()[0][1] for c in ax.containers)
    assert len(set(xs)) == len(xs)  # the models' points at p = 0.4 do not overlap


def test_several_flip_ps_give_lines_over_p_from_the_clean_reference():
    sel = make_selection({**UNIFORM, **FLIP, **FLIP_MORE})
    fig = output("label_noise", "accuracy_vs_p")({"selection": sel})
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.lines] == registry_order(MODELS_USED)
    assert len(ax.collections) == len(MODELS_USED)  # a CI band per model
    for line in ax.lines:
        model = line.get_label()
        assert list(line.get_xdata()) == [0.0, 0.4, 0.8]
        expected = [np.mean(UNIFORM[(model, 0)][1]), np.mean(FLIP[(model, ("flip", 0.4))][1])]
        expected.append(np.mean(FLIP_MORE[(model, ("flip", 0.8))][1]))
        np.testing.assert_allclose(line.get_ydata(), 100 * np.array(expected), atol=1e-9)


def test_without_clean_runs_the_flip_figure_says_it_has_no_reference():
    fig = output("label_noise", "accuracy_vs_p")({"selection": make_selection(FLIP)})
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["p = 0.4"]
    assert "no clean runs (no p = 0)" in fig.get_suptitle()


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
    fig = output("label_noise", "accuracy_vs_alpha")({"selection": uniform_sel})
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


# ---------------------------------------------------------------------------------- tent_grid


def tent_errors(source: float | None, tent: dict) -> pd.DataFrame:
    """corruption_errors' mean rows (all corruptions and severities) of conv4_bn: source's error
    and tent's per (lr, batch size) -> (mean, CI half-width)."""
    base = {"model": "conv4_bn", "metric": "error", "condition": "mean", "severity": 0, "n": 2}
    rows = []
    if source is not None:
        rows.append({**base, "method": "source", "method_order": 0, "mean": source,
                     "ci95_low": source - 0.01, "ci95_high": source + 0.01})  # fmt: skip
    for order, ((lr, bs), (mean, half)) in enumerate(tent.items(), start=1):
        rows.append({**base, "method": "tent", "method_order": order, "tta_lr": lr,
                     "tta_batch_size": bs, "tta_steps": 1, "tta_stream": "shuffled",
                     "mean": mean, "ci95_low": mean - half, "ci95_high": mean + half})  # fmt: skip
    return pd.DataFrame(rows)


# tent's four settings 0.3 points apart, each +-0.4 points over seeds: noise, not structure
NEAR = {(0.001, 64): (0.118, 0.004), (0.001, 256): (0.121, 0.004),
        (0.003, 64): (0.120, 0.004), (0.003, 256): (0.119, 0.004)}  # fmt: skip


def test_tent_grid_colours_from_zero_past_source_and_prints_each_cells_ci():
    fig = output("corruption_tta", "tent_grid")({"corruption_errors": tent_errors(0.263, NEAR)})
    ax = fig.axes[0]
    (image,) = ax.images
    # 0 to the next 10% above source's 26.3%, not the cells' own 11.8-12.1%
    assert (image.norm.vmin, image.norm.vmax) == (0, 30)
    shades = image.norm(image.get_array()).compressed()
    assert shades.max() - shades.min() == pytest.approx(0.3 / 30)
    cells = sorted(t.get_text() for t in ax.texts)
    assert cells == ["11.8\n±0.4", "11.9\n±0.4", "12.0\n±0.4", "12.1\n±0.4"]
    assert ax.get_title() == "conv4_bn (source: 26.3%)"
    bar = fig.axes[-1]
    assert [line.get_ydata()[0] for line in bar.lines] == [pytest.approx(26.3)]
    title = fig._suptitle.get_text()
    assert "cells: mean ± half its 95% CI over seeds; colour from 0 to 30%" in title
    # without a source row the scale still starts at 0 and covers the cells; one seed: no CI
    one_seed = {k: (mean, np.nan) for k, (mean, _) in NEAR.items()}
    fig = output("corruption_tta", "tent_grid")({"corruption_errors": tent_errors(None, one_seed)})
    (image,) = fig.axes[0].images
    assert (image.norm.vmin, image.norm.vmax) == (0, 20)
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["11.8", "11.9", "12.0", "12.1"]
    assert fig.axes[0].get_title() == "conv4_bn" and len(fig.axes[-1].lines) == 0
