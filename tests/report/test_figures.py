"""Figures: every legend sits outside its axes, so it cannot cover a data point."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from resnetlib.report import figures  # noqa: E402


def _curves():
    rows = [{"kind": k, "depth": d, "seed": 0, "iteration": i, "train_error": 50 - i + d / 10,
             "test_error": 55 - i} for k in ("plain", "resnet") for d in (20, 32) for i in (4, 8, 12)]
    return pd.DataFrame(rows)


def _architectures():
    return pd.DataFrame({"layers": [18, 34, 20, 110], "family": ["imagenet", "imagenet", "cifar", "cifar"],
                         "params": [11.7e6, 21.8e6, 0.27e6, 1.7e6], "macs": [1.8e9, 3.6e9, 4e7, 2.5e8],
                         "paper_params": [None, None, 0.27e6, 1.7e6], "paper_macs": [1.8e9, 3.6e9, None, None]})


def _responses():
    return pd.DataFrame([{"model": m, "layer": i, "std": 1.0 + i / 10} for m in ("plain-20", "ResNet-20")
                         for i in range(1, 20)])


def _shortcuts():
    return pd.DataFrame({"option": ["plain", "A", "B", "C"], "train_error": [10, 9, 8, 7],
                         "test_error": [12, 11, 10, 9], "params": [0.27e6, 0.27e6, 0.28e6, 0.3e6]})


def _statements():
    inf = float("inf")
    return pd.DataFrame({"label": ["rep", "con", "inc", "one seed", "not measured"],
                         "verdict": ["reproduced", "contradicted", "inconclusive", "inconclusive",
                                     "not measurable at this scale"],
                         "effect": [6.0, -6.0, 0.2, 3.0, None], "ci_low": [4.0, -7.5, -0.9, -inf, None],
                         "ci_high": [8.0, -4.5, 1.3, None, None], "margin": [1.0, 1.0, 1.0, 1.0, None]})


def _memory():
    return pd.DataFrame({"depth": [110, 110, 1202, 1202], "activation_checkpointing": [False, True] * 2,
                         "activation_bytes_per_image": [2**22, 2**20, 2**25, 2**23]})


def _localization():
    metrics = ("cls_top1", "cls_top5", "loc_gt_class", "loc_top1", "loc_top5")
    errors = pd.DataFrame([{"seed": seed, "stage": stage, **{m: 30.0 + seed - 5 * (stage == "rpn_rcnn") for m in metrics}}
                           for seed in (0, 1) for stage in ("rpn", "rpn_rcnn")])
    errors.loc[errors.stage == "rpn_rcnn", "loc_gt_class"] = float("nan")  # the R-CNN stage does not define it
    ensemble = pd.DataFrame([{"stage": stage, "members": 2, **{m: 25.0 for m in metrics}} for stage in ("rpn", "rpn_rcnn")])
    paper = {("rpn", "loc_top5"): 14.4, ("rpn_rcnn", "loc_top5"): 10.6}
    return errors, paper, "", ensemble


@pytest.mark.parametrize("draw", [
    lambda: figures.cost_against_depth(_architectures()),
    lambda: figures.error_curves(_curves()),
    lambda: figures.response_stds(_responses()),
    lambda: figures.shortcut_options(_shortcuts(), {"plain": 28.54, "A": 25.03, "B": 24.52, "C": 24.19}),
    lambda: figures.activation_memory(_memory()),
    lambda: figures.forest_plot(_statements()),
    lambda: figures.localization_errors(*_localization()),
], ids=["cost", "curves", "responses", "shortcuts", "memory", "forest", "localization"])
def test_legends_do_not_cover_the_axes(draw):
    fig = draw()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = [(ax, ax.get_legend()) for ax in fig.axes if ax.get_legend() is not None]
    assert legends, "the figure has no legend"
    for ax, legend in legends:
        box = legend.get_window_extent(renderer)
        assert box.x0 > ax.get_window_extent(renderer).x1, f"legend of '{ax.get_title()}' is inside its axes"
        for other in fig.axes:  # nor over another panel
            assert not box.overlaps(other.get_window_extent(renderer)), (ax.get_title(), other.get_title())
    plt.close(fig)


def test_forest_plot_one_row_per_statement_coloured_by_verdict():
    fig = figures.forest_plot(_statements())
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["rep", "con", "inc", "one seed", "not measured"]
    lo, hi = ax.get_xlim()
    assert lo < -7.5 and hi > 8.0  # every finite interval end is inside the axes
    bars = [c for c in ax.collections if len(c.get_segments()) == 1]
    colours = [tuple(c.get_colors()[0][:3]) for c in bars]
    expected = [figures.VERDICT_COLOURS[v] for v in ("reproduced", "contradicted", "inconclusive", "inconclusive")]
    assert colours == [matplotlib.colors.to_rgb(c) for c in expected]
    # the unbounded lower end of "one seed" reaches the axis edge
    assert bars[3].get_segments()[0][0][0] == pytest.approx(lo)
    assert any("no effect measured" in t.get_text() for t in ax.texts)
    labels = ax.get_legend_handles_labels()[1]
    assert "practical margin" in labels and "not measurable at this scale" in labels
    plt.close(fig)


def test_a_one_seed_interval_is_drawn_unlike_a_t_interval():
    """One seed's interval is that seed's sampling error only: thin and dashed, with its own legend entry."""
    statements = _statements().assign(n_seeds=[3, 3, 3, 1, None])
    statements.loc[3, ["ci_low", "ci_high"]] = [1.0, 5.0]
    fig = figures.forest_plot(statements)
    ax = fig.axes[0]
    bars = [c for c in ax.collections if len(c.get_segments()) == 1]
    styles = [(c.get_linestyle()[0][1] is not None, c.get_linewidth()[0]) for c in bars]
    assert styles[:3] == [(False, 2.2)] * 3 and styles[3] == (True, 1.2)
    assert "1 seed: its sampling error only" in ax.get_legend_handles_labels()[1]
    plt.close(fig)


def test_the_budget_studys_controls_are_drawn_beside_its_budget_line_not_on_it():
    rows = [{"id": "fig6", "core_hours": h, "image_size": 16, "effect": e, "ci_low": e - 1, "ci_high": e + 1,
             "margin": 1.0, "verdict": "inconclusive", "control": c}
            for h, e, c in [(0.3, -6.0, False), (1.0, -3.0, False), (2.0, -4.0, True)]]
    ax = figures.budget_emergence(pd.DataFrame(rows)).axes[0]
    joined = [line for line in ax.lines if len(line.get_xdata()) > 1 and list(line.get_xdata()) != [0, 1]]  # not axhline
    assert [list(line.get_xdata()) for line in joined] == [[0.3, 1.0]]
    assert [list(line.get_xdata()) for line in ax.lines if line.get_marker() == figures.CONTROL_MARKER][:1] == [[2.0]]
