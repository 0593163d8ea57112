"""Figures of the detection experiment, drawn from the files a run wrote (never from live objects).

- ``plot_curves(results_dir)``: training loss per logged step, one line per backbone (``curves.csv``).
- ``plot_detections(results_dir, n)``: test images with ground truth and each detector's detections
  (``detections.json``: one row per backbone, or per Table 9 variant).
- ``class_ap_table(results_dir, by)``: the per-class AP@.5 (``class_ap.csv``), one column per backbone or
  variant (mean over seeds), with each class's ground-truth objects.
- ``plot_improvement_gains(results_dir)``: Table 9's variants, their gain over the baseline per seed and
  the paper's (``metrics.csv``, ``gains.csv`` of the detection_improvements experiment).
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["class_ap_table", "plot_curves", "plot_detections", "plot_improvement_gains"]


def _style() -> None:
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")


def plot_curves(results_dir: str | Path):
    """Total and per-component training loss vs iteration for each backbone; returns the figure."""
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    from .figures import legend_outside

    _style()
    path = Path(results_dir) / "curves.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the detection experiment first")
    df = pd.read_csv(path)
    parts = [
        c
        for c in ("loss", "loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg")
        if c in df
    ]
    fig, axes = plt.subplots(1, len(parts), figsize=(3.6 * len(parts), 3.2), squeeze=False)
    for ax, col in zip(axes[0], parts, strict=True):
        sns.lineplot(data=df, x="iteration", y=col, hue="backbone", ax=ax, marker="o", markersize=3)
        ax.set_title(col.replace("loss_", "").replace("loss", "total loss"))
        ax.set_ylabel("")
        if ax is not axes[0][-1] and ax.get_legend() is not None:
            ax.get_legend().remove()
    legend_outside(axes[0][-1], title="backbone")
    fig.suptitle("Faster R-CNN training loss (equal budget per backbone)")
    fig.tight_layout()
    return fig


def plot_detections(results_dir: str | Path, n: int = 4, score_threshold: float | None = None,
                    detectors: list[str] | None = None):
    """``n`` test images, one row per detector (backbone or variant; ``detectors`` picks some, in that
    order); ground truth dashed white, detections coloured by class.

    ``score_threshold`` None shows each image's top-k detections, k = its number of ground-truth objects
    (short runs give low but informative scores); a number shows every detection scoring at least that.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    _style()
    data = _read_detections(Path(results_dir) / "detections.json", n)
    backbones, images = list(detectors or data["backbones"]), data["images"][:n]
    unknown = sorted(set(backbones) - set(data["backbones"]))
    if unknown:
        raise ValueError(f"no detections of {unknown} in detections.json; it holds {data['backbones']}")
    palette = sns.color_palette("husl", len(data["classes"]))
    fig, axes = plt.subplots(
        len(backbones), len(images), figsize=(2.8 * len(images), 2.9 * len(backbones)), squeeze=False
    )
    for col, item in enumerate(images):
        pixels = _pixels(item["file"])
        for row, name in enumerate(backbones):
            ax = axes[row][col]
            _draw_image(ax, pixels, item["gt_boxes"])
            shown = _shown(item["detections"][name], len(item["gt_boxes"]), score_threshold)
            _draw_detections(ax, shown, data["classes"], palette)
            if col == 0:
                ax.set_ylabel(name)
    which = (
        "top-k detections (k = objects in the image)"
        if score_threshold is None
        else f"score >= {score_threshold}"
    )
    fig.suptitle(f"Test detections: {which}; dashed: ground truth")
    fig.tight_layout()
    return fig


def _read_detections(path: Path, n: int) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the detection experiment first")
    data = json.loads(path.read_text())
    if not data["images"][:n]:
        raise ValueError(f"{path} holds no images")
    return data


def _pixels(file: str):
    import numpy as np
    from PIL import Image

    with Image.open(file) as img:
        return np.asarray(img.convert("RGB"))


def _shown(det: dict, num_objects: int, score_threshold: float | None) -> list[tuple]:
    """(box, score, label) of the detections drawn: the top ``num_objects``, or all above the threshold."""
    shown = sorted(zip(det["boxes"], det["scores"], det["labels"], strict=True), key=lambda d: -d[1])
    if score_threshold is None:
        return shown[:num_objects]
    return [d for d in shown if d[1] >= score_threshold]


def _draw_image(ax, pixels, gt_boxes: list[list[float]]) -> None:
    from matplotlib.patches import Rectangle

    ax.imshow(pixels, cmap="gray")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for x1, y1, x2, y2 in gt_boxes:
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="white", ls="--", lw=1))


def _draw_detections(ax, shown: list[tuple], classes: list[str], palette) -> None:
    from matplotlib.patches import Rectangle

    for (x1, y1, x2, y2), score, label in shown:
        color = palette[label % len(palette)]
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=color, lw=1.5))
        ax.text(
            x1,
            y1,
            f"{classes[label]} {score:.2f}",
            color="black",
            fontsize=6,
            bbox={"facecolor": color, "alpha": 0.8, "pad": 1, "lw": 0},
            va="bottom",
        )


def class_ap_table(results_dir: str | Path, by: str = "backbone"):
    """The per-class AP@.5 (VOC07, percent) of ``class_ap.csv``: one row per class with its ground-truth
    objects in the test images, one column per value of ``by`` (``backbone``, or ``variant`` of Table 9)
    in the order the run wrote them, each the mean over seeds; a last row, the mean over classes (the mAP
    the experiment reports as ``voc07_map``)."""
    import pandas as pd

    path = Path(results_dir) / "class_ap.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the detection experiment first")
    table = pd.read_csv(path)
    order = list(dict.fromkeys(table[by]))
    classes = list(dict.fromkeys(table["class"]))
    ap = table.pivot_table(index="class", columns=by, values="ap50", aggfunc="mean", dropna=False)
    objects = table.groupby("class")["objects"].first()
    out = pd.concat([objects.rename("objects"), ap[order]], axis=1).loc[classes]
    out.loc["mean over classes"] = [float("nan"), *ap[order].mean(axis=0, skipna=True)]
    out.columns.name = None
    return out


def plot_improvement_gains(results_dir: str | Path):
    """Gain of each variant over the baseline, mAP@.5 and mAP@[.5,.95] panels: bars the mean over seeds,
    dots each seed (paired with its own baseline), diamonds the paper's Table 9 gain; returns the figure."""
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    from .figures import legend_outside

    _style()
    folder = Path(results_dir)
    for name in ("metrics.csv", "gains.csv"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} not found: run the detection_improvements experiment first")
    metrics, gains = pd.read_csv(folder / "metrics.csv"), pd.read_csv(folder / "gains.csv")
    base = metrics[metrics.variant == "baseline"].set_index("seed")
    order = [v for v in gains.variant if v != "baseline"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.45 * len(order) + 1.8), sharey=True)
    for ax, (metric, label) in zip(axes, (("coco_map50", "mAP@.5"), ("coco_map", "mAP@[.5,.95]"))):
        per_seed = metrics[metrics.variant != "baseline"].assign(
            gain=lambda t, m=metric: t[m].to_numpy() - base.loc[t.seed, m].to_numpy())
        sns.barplot(data=per_seed, y="variant", x="gain", order=order, color="#9ecae1", errorbar=None, ax=ax)
        sns.stripplot(data=per_seed, y="variant", x="gain", order=order, color="k", size=4, ax=ax)
        paper = gains.set_index("variant")[f"paper_gain_{'map50' if metric == 'coco_map50' else 'map'}"]
        shown = [(y, paper[v]) for y, v in enumerate(order) if pd.notna(paper.get(v))]
        if shown:
            ys, xs = zip(*shown)
            ax.plot(xs, ys, marker="D", color="#d62728", ls="none", label="paper (Table 9, COCO, cumulative)")
        ax.axvline(0, color="0.3", lw=0.8)
        ax.set_xlabel(f"gain over the baseline, {label} (points)")
        ax.set_ylabel("")
    if axes[1].get_legend_handles_labels()[0]:
        legend_outside(axes[1])
    fig.tight_layout()
    return fig
