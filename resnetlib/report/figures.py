"""Figures that put our measurements beside the paper's, drawn with seaborn."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

sns.set_theme(style="whitegrid", context="notebook")


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
        ax.legend(fontsize=8)
    axes[0].set_title("Parameters (Table 6 crosses)")
    axes[1].set_title("Multiply-adds per image (Table 1 crosses)")
    fig.tight_layout()
    return fig
