"""Figures that put our measurements beside the paper's, drawn with seaborn.

Legends sit outside the axes (right of the plot, :func:`legend_outside`), so they never cover data.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

sns.set_theme(style="whitegrid", context="notebook")

__all__ = [
    "VERDICT_COLOURS",
    "activation_memory",
    "budget_emergence",
    "cost_against_depth",
    "error_curves",
    "forest_plot",
    "legend_outside",
    "localization_errors",
    "response_stds",
    "shortcut_options",
    "test_methods",
]


def legend_outside(ax: plt.Axes, title: str | None = None, **kwargs) -> None:
    """Redraw ``ax``'s legend to the right of the axes, where it cannot cover a data point."""
    handles, labels = ax.get_legend_handles_labels()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    if handles:
        ax.legend(handles, labels, title=title, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0,
                  fontsize=8, title_fontsize=8, frameon=False, **kwargs)


def cost_against_depth(table: pd.DataFrame) -> plt.Figure:
    """Parameters and multiply-adds against depth, ours as points, the paper's as crosses (Tables 1, 6)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    t = table.copy()
    t["params (M)"] = t["params"] / 1e6
    t["multiply-adds (G)"] = t["macs"] / 1e9
    sns.scatterplot(data=t, x="layers", y="params (M)", hue="family", style="family", s=70, ax=axes[0])
    sns.scatterplot(data=t, x="layers", y="multiply-adds (G)", hue="family", style="family", s=70, ax=axes[1])
    paper_params = t.dropna(subset=["paper_params"])
    axes[0].scatter(paper_params["layers"], paper_params["paper_params"] / 1e6, marker="x", c="k", label="paper")
    paper_macs = t.dropna(subset=["paper_macs"])
    axes[1].scatter(paper_macs["layers"], paper_macs["paper_macs"] / 1e9, marker="x", c="k", label="paper")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("weighted layers")
        legend_outside(ax)
    axes[0].set_title("Parameters (Table 6 crosses)")
    axes[1].set_title("Multiply-adds per image (Table 1 crosses)")
    fig.tight_layout()
    return fig


def error_curves(curves: pd.DataFrame, title_prefix: str = "") -> plt.Figure:
    """Fig. 6 style: training error (dashed) and test error (bold) against iterations, plain | ResNet."""
    kinds = [k for k in ("plain", "resnet") if k in set(curves["kind"])]
    fig, axes = plt.subplots(1, len(kinds), figsize=(6 * len(kinds), 4.2), sharey=True, squeeze=False)
    depths = sorted(set(curves["depth"]))
    palette = dict(zip(depths, sns.color_palette("viridis", len(depths))))
    mean = curves.groupby(["kind", "depth", "iteration"], as_index=False)[["train_error", "test_error"]].mean()
    for ax, kind in zip(axes[0], kinds):
        for depth in depths:
            part = mean[(mean.kind == kind) & (mean.depth == depth)]
            if part.empty:  # a depth trained for the other kind only
                continue
            label = f"{'plain' if kind == 'plain' else 'ResNet'}-{depth}"
            ax.plot(part.iteration, part.train_error, "--", lw=1, color=palette[depth])
            ax.plot(part.iteration, part.test_error, "-", lw=2.2, color=palette[depth], label=label)
        ax.set_title(f"{title_prefix}{'plain' if kind == 'plain' else 'residual'} nets")
        ax.set_xlabel("iteration")
        ax.plot([], [], "--", lw=1, color="grey", label="training")
        ax.plot([], [], "-", lw=2.2, color="grey", label="test")
        legend_outside(ax)
    axes[0][0].set_ylabel("error (%)  (dashed: training, bold: test)")
    fig.tight_layout()
    return fig


def response_stds(responses: pd.DataFrame) -> plt.Figure:
    """Fig. 7: std of each 3x3 layer's response, in layer order (top) and sorted by magnitude (bottom)."""
    fig, axes = plt.subplots(2, 1, figsize=(9, 6.5))
    for model, part in responses.groupby("model", sort=False):
        axes[0].plot(part["layer"], part["std"], marker=".", lw=1, label=model)
        axes[1].plot(range(1, len(part) + 1), sorted(part["std"], reverse=True), marker=".", lw=1, label=model)
    axes[0].set_xlabel("layer index (original order)")
    axes[1].set_xlabel("layer index (sorted by magnitude)")
    for ax in axes:
        ax.set_ylabel("std")
    legend_outside(axes[0], ncol=1 + len(responses["model"].unique()) // 12)
    fig.tight_layout()
    return fig


def shortcut_options(final: pd.DataFrame, paper_top1: dict[str, float] | None = None, title: str = "") -> plt.Figure:
    """Table 3 side by side: our final errors per shortcut option (training light, test dark), the paper's
    top-1 errors (its own panel: a different data set and scale), and each net's parameters."""
    order = [o for o in ("plain", "A", "B", "C") if o in set(final["option"])]
    panels = 3 if paper_top1 else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.8 * panels, 4.2))
    long = final.melt(id_vars="option", value_vars=["train_error", "test_error"], var_name="error",
                      value_name="error (%)")
    long["error"] = long["error"].map({"train_error": "training", "test_error": "test"})
    sns.barplot(data=long, x="option", y="error (%)", hue="error", order=order, palette=["#9ecae1", "#08519c"],
                ax=axes[0])
    axes[0].set_title(f"{title}ours: final error")
    legend_outside(axes[0])
    if paper_top1:
        values = [paper_top1[o] for o in order]
        axes[1].bar(order, values, color="grey")
        axes[1].set_ylim(min(values) - 2, max(values) + 1)
        for x, v in enumerate(values):
            axes[1].text(x, v + 0.1, f"{v:.2f}", ha="center", fontsize=8)
        axes[1].set_title("paper, Table 3: ImageNet top-1 error (%)")
    params = final.set_index("option").loc[order, "params"] / 1e6
    axes[-1].bar(order, params.values, color=sns.color_palette("viridis", len(order)))
    axes[-1].set_ylim(params.min() * 0.95, params.max() * 1.02)
    for x, v in enumerate(params.values):
        axes[-1].text(x, v, f"{v:.3f}M", ha="center", va="bottom", fontsize=8)
    axes[-1].set_title("parameters of our nets (M)")
    for ax in axes:
        ax.set_xlabel("shortcut option")
    fig.tight_layout()
    return fig


#: Sec. 3.4's test protocols, as the figures name them.
METHOD_LABELS = {"center_crop": "centre crop", "ten_crop": "10-crop", "multiscale": "multi-scale"}


def test_methods(tests: pd.DataFrame, paper_top1: pd.DataFrame | None = None, title: str = "") -> plt.Figure:
    """Tables 3 and 4 side by side: our top-1 error per depth under each test protocol (bars: mean over
    seeds, points: seeds), and the paper's (10-crop, Table 3; multi-scale, Table 4) in its own panel."""
    t = tests.assign(net="ResNet-" + tests["depth"].astype(str), test=tests["method"].map(METHOD_LABELS))
    order = [f"ResNet-{d}" for d in sorted(set(tests["depth"]))]
    hue_order = [METHOD_LABELS[m] for m in METHOD_LABELS if m in set(tests["method"])]
    palette = dict(zip(hue_order, sns.color_palette("crest", len(hue_order))))
    panels = 2 if paper_top1 is not None and len(paper_top1) else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4.2), squeeze=False)
    ax = axes[0][0]
    sns.barplot(data=t, x="net", y="top1", hue="test", order=order, hue_order=hue_order, palette=palette,
                errorbar=None, alpha=0.8, ax=ax)
    sns.stripplot(data=t, x="net", y="top1", hue="test", order=order, hue_order=hue_order, dodge=True,
                  palette=dict.fromkeys(hue_order, "k"), size=3, legend=False, ax=ax)
    ax.set_ylabel("top-1 error (%)")
    ax.set_xlabel("")
    ax.set_title(f"{title}ours (bars: mean, dots: seeds)")
    legend_outside(ax, title="testing")
    if panels == 2:
        p = paper_top1.assign(test=paper_top1["method"].map(METHOD_LABELS))
        sns.barplot(data=p, x="net", y="top1", hue="test", hue_order=[h for h in hue_order if h in set(p.test)],
                    palette=palette, ax=axes[0][1])
        axes[0][1].set_ylim(p["top1"].min() - 2, p["top1"].max() + 1)
        axes[0][1].set_title("paper: ImageNet top-1 error (Tables 3, 4)")
        axes[0][1].set_xlabel("")
        axes[0][1].set_ylabel("top-1 error (%)")
        legend_outside(axes[0][1], title="testing")
    fig.tight_layout()
    return fig


#: The localization errors as the figure names them.
LOCALIZATION_LABELS = {"cls_top1": "classification top-1", "cls_top5": "classification top-5",
                       "loc_gt_class": "localization, true class", "loc_top1": "localization top-1",
                       "loc_top5": "localization top-5"}


#: Table 13's localization stages as the figure names them.
LOCALIZATION_STAGES = {"rpn": "RPN", "rpn_rcnn": "RPN + R-CNN"}


def localization_errors(errors: pd.DataFrame, paper: dict[tuple[str, str], float] | None = None, title: str = "",
                        ensemble: pd.DataFrame | None = None) -> plt.Figure:
    """ILSVRC's errors per metric, one panel per stage (``stage`` column; Table 13's RPN, RPN + R-CNN): bars the
    mean over seeds, dots the seeds, crosses the ensemble of the seeds, diamonds the paper's ((stage, metric)
    keys). A metric a stage does not define (NaN) is left out."""
    errors = errors if "stage" in errors else errors.assign(stage="rpn")
    stages = [s for s in LOCALIZATION_STAGES if s in set(errors.stage)]
    order = list(LOCALIZATION_LABELS.values())
    fig, axes = plt.subplots(1, len(stages), figsize=(4.2 * len(stages) + 2.2, 3.6), sharex=True, sharey=True,
                             squeeze=False)
    for ax, stage in zip(axes[0], stages):
        _localization_panel(ax, errors[errors.stage == stage], order)
        if ensemble is not None and stage in set(ensemble.stage):
            row = ensemble[ensemble.stage == stage].iloc[0]
            points = [(row[m], order.index(label)) for m, label in LOCALIZATION_LABELS.items() if pd.notna(row[m])]
            ax.plot(*zip(*points), marker="X", color="#2e8b3a", ls="none", ms=8,
                    label=f"ensemble of {int(row['members'])}")
        marks = {m: v for (s, m), v in (paper or {}).items() if s == stage}
        if marks:
            ax.plot(list(marks.values()), [order.index(LOCALIZATION_LABELS[m]) for m in marks], marker="D",
                    color="#d62728", ls="none", label="paper (Table 13, ImageNet)")
        ax.set_title(f"{LOCALIZATION_STAGES[stage]}", fontsize=10)
        ax.set_xlabel("error (%)")
        ax.set_ylabel("")
    legend_outside(axes[0][-1])
    fig.suptitle(f"{title}ours (bars: mean, dots: seeds)", fontsize=10)
    fig.tight_layout()
    return fig


def _localization_panel(ax: plt.Axes, errors: pd.DataFrame, order: list[str]) -> None:
    """One stage's bars (mean over seeds) and dots (seeds) per metric."""
    t = errors.melt(id_vars="seed", value_vars=list(LOCALIZATION_LABELS), var_name="metric", value_name="error")
    t = t.dropna(subset=["error"])
    t["metric"] = t["metric"].map(LOCALIZATION_LABELS)
    sns.barplot(data=t, y="metric", x="error", order=order, color="#9ecae1", errorbar=None, ax=ax)
    sns.stripplot(data=t, y="metric", x="error", order=order, color="k", size=4, ax=ax)


def activation_memory(memory: pd.DataFrame) -> plt.Figure:
    """Activation memory per image of one training step, with and without activation checkpointing."""
    m = memory.copy()
    m["net"] = "ResNet-" + m["depth"].astype(str)
    m["MiB per image"] = m["activation_bytes_per_image"] / 2**20
    m["checkpointing"] = m["activation_checkpointing"].map({True: "checkpointed blocks", False: "no checkpointing"})
    fig, ax = plt.subplots(figsize=(6.5, 4))
    sns.barplot(data=m, x="net", y="MiB per image", hue="checkpointing",
                hue_order=["no checkpointing", "checkpointed blocks"], palette=["#fc9272", "#31a354"], ax=ax)
    for container in ax.containers:
        ax.bar_label(container, fmt="%.1f", fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel("")
    ax.set_title("Tensors saved for backward (3x32x32 input)")
    legend_outside(ax)
    fig.tight_layout()
    return fig


#: Verdict colours of the forest plot (the index page's badge colours, saturated enough for lines).
VERDICT_COLOURS = {"reproduced": "#2e8b3a", "contradicted": "#c0392b", "inconclusive": "#d68910",
                   "not reproduced": "#8e44ad", "not measurable at this scale": "#8c8c8c"}


def forest_plot(statements: pd.DataFrame) -> plt.Figure:
    """Each statement's mean effect (dot) with its 95% interval (bar) and its practical margin (black
    tick), one row per statement, coloured by verdict (issue 9: how firmly each statement holds).

    ``statements`` has columns ``label``, ``verdict``, ``effect``, ``ci_low``, ``ci_high``, ``margin``
    (NaN where not measured) and optionally ``n_seeds``. Effects are in each claim's own unit, positive in
    the paper's direction; an unbounded interval end is drawn to the axis edge with an arrow; a statement
    without an effect is a grey row saying so. A one-seed interval (that seed's sampling error only, not
    the spread of seeds) is drawn thin and dashed, unlike a Student-t interval over seeds.
    """
    t = statements.reset_index(drop=True)
    lo, hi = _forest_limits(t)
    fig, ax = plt.subplots(figsize=(12, 1.2 + 0.34 * max(len(t), 1)))
    ax.axvline(0, color="k", lw=0.8)
    for y, row in t.iterrows():
        _forest_row(ax, y, row, lo, hi)
    ax.set_xlim(lo, hi)
    ax.set_ylim(len(t) - 0.5, -0.5)
    ax.set_yticks(range(len(t)), [str(x) for x in t["label"]], fontsize=8)
    ax.set_xlabel("effect in the claim's unit (positive: the paper's direction); dot: mean, bar: 95% interval",
                  fontsize=9)
    _forest_legend(ax, t)
    fig.tight_layout()
    return fig


def _forest_limits(t: pd.DataFrame) -> tuple[float, float]:
    """x range covering every finite effect, interval end and margin, and zero, with 8% padding."""
    values = pd.concat([t[c] for c in ("effect", "ci_low", "ci_high", "margin")]).astype(float)
    finite = values[values.abs() < float("inf")].dropna()
    lo, hi = min(finite.min(), 0.0) if len(finite) else -1.0, max(finite.max(), 0.0) if len(finite) else 1.0
    pad = 0.08 * (hi - lo or 1.0)
    return lo - pad, hi + pad


def _forest_row(ax: plt.Axes, y: int, row: pd.Series, lo: float, hi: float) -> None:
    """One statement: interval bar (clipped to the axes, arrow at an unbounded end), mean, margin tick."""
    colour = VERDICT_COLOURS.get(row["verdict"], "#8c8c8c")
    if pd.isna(row["effect"]):
        ax.text(0, y, "  no effect measured", va="center", fontsize=7, color=colour)
        return
    low = lo if pd.isna(row["ci_low"]) else max(row["ci_low"], lo)
    high = hi if pd.isna(row["ci_high"]) else min(row["ci_high"], hi)
    one_seed = row.get("n_seeds") == 1
    ax.hlines(y, low, high, color=colour, lw=1.2 if one_seed else 2.2, linestyles="dashed" if one_seed else "solid")
    for end, bounded, marker in ((low, row["ci_low"] > lo, "<"), (high, row["ci_high"] < hi, ">")):
        if not bounded:
            ax.plot(end, y, marker=marker, color=colour, ms=6)
    ax.plot(row["effect"], y, "o", color=colour, ms=6, mec="k", mew=0.5)
    if not pd.isna(row["margin"]):
        ax.plot(row["margin"], y, marker="|", color="k", ms=12, mew=1.6, zorder=4)


def _forest_legend(ax: plt.Axes, t: pd.DataFrame) -> None:
    """Verdict colours present in the plot and the margin tick, right of the axes."""
    for verdict in [v for v in VERDICT_COLOURS if v in set(t["verdict"])]:
        ax.plot([], [], "o-", color=VERDICT_COLOURS[verdict], label=verdict)
    ax.plot([], [], marker="|", ls="", color="k", ms=12, mew=1.6, label="practical margin")
    if "n_seeds" in t and (t["n_seeds"] == 1).any():
        ax.plot([], [], ls="--", lw=1.2, color="0.3", label="1 seed: its sampling error only")
    legend_outside(ax, title="verdict")


#: The budget study's controls: drawn beside its budget lines, never joined to them.
CONTROL_MARKER = "X"


def budget_emergence(effects: pd.DataFrame, columns: int = 4) -> plt.Figure:
    """The budget study: each claim's mean effect (dot) and 95% interval (bar) against the training cost
    of the setting (core-hours, log scale), one panel per claim, coloured by verdict, one line per image
    size; zero (black) and the claim's practical margin (dashed). A hollow dot is a setting where a gate
    failed (a net did not train): its mean is shown, it is no evidence. A control (``control``: another
    precision, a training subset) is a cross beside the lines, not a point on them: it is not another budget.

    ``effects`` is the study's ``effects`` table (``id``, ``core_hours``, ``image_size``, ``effect``,
    ``ci_low``, ``ci_high``, ``margin``, ``verdict``; ``control`` where it has controls).
    """
    from ..claims.emergence import control_rows

    control = control_rows(effects)
    ids = list(dict.fromkeys(effects["id"]))
    rows = -(-len(ids) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False)
    sizes = sorted(effects["image_size"].unique())
    styles = dict(zip(sizes, ["s", "o", "^", "D"]))
    for ax, cid in zip(axes.flat, ids):
        part = effects[effects["id"] == cid].sort_values("core_hours")
        for size, line in part[~control[part.index]].groupby("image_size"):
            ax.plot(line["core_hours"], line["effect"], color="0.6", lw=0.8, zorder=1)
            for _, row in line.iterrows():
                _emergence_point(ax, row, styles[size])
        for _, row in part[control[part.index]].iterrows():
            _emergence_point(ax, row, CONTROL_MARKER)
        ax.axhline(0, color="k", lw=0.8)
        margin = part["margin"].dropna()
        if len(margin):
            ax.axhline(float(margin.iloc[0]), color="k", lw=0.8, ls="--")
        _log_hours_axis(ax)
        ax.set_title(cid.replace("_", " "), fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(ids):]:
        ax.axis("off")
    for verdict in [v for v in VERDICT_COLOURS if v in set(effects["verdict"])]:
        axes.flat[0].plot([], [], "o", color=VERDICT_COLOURS[verdict], label=verdict)
    for size in sizes:
        axes.flat[0].plot([], [], styles[size], color="0.4", mfc="none", label=f"{size} px")
    if control.any():
        axes.flat[0].plot([], [], CONTROL_MARKER, color="0.4", label="control (fp32, a subset): not a budget")
    fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="lower center", ncol=7, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    fig.supxlabel("training cost of the setting (core-hours, log scale)", fontsize=9, y=0.035)
    fig.supylabel("effect in the claim's unit (positive: the paper's direction)", fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def _log_hours_axis(ax: plt.Axes) -> None:
    """A log x axis labelled in plain numbers (0.1, 0.3, 1, ...), without minor labels."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.set_xscale("log")
    low, high = ax.get_xlim()
    ticks = [t for t in (0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100) if low <= t <= high] or [low, high]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _emergence_point(ax: plt.Axes, row: pd.Series, marker: str) -> None:
    colour = VERDICT_COLOURS.get(row["verdict"], "#8c8c8c")
    if pd.isna(row["effect"]):
        return
    if not (pd.isna(row["ci_low"]) or pd.isna(row["ci_high"])):
        ax.vlines(row["core_hours"], row["ci_low"], row["ci_high"], color=colour, lw=2)
    gated = pd.isna(row["ci_low"]) and pd.isna(row["ci_high"])
    ax.plot(row["core_hours"], row["effect"], marker, color=colour, mfc="white" if gated else colour, ms=6,
            mec=colour, zorder=3)
