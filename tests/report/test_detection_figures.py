"""The detection reports' per-class AP table and detection figure, read from the files a run wrote."""

import json

import matplotlib

matplotlib.use("Agg")

import math  # noqa: E402

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from resnetlib.report import detection_figures as figures  # noqa: E402


def test_class_ap_table_averages_seeds_per_column_and_ends_with_the_mean(tmp_path):
    rows = [{"seed": s, "variant": v, "class": c, "objects": n, "ap50": ap + s}
            for s in (0, 2) for v in ("baseline", "box_refinement")
            for c, n, ap in (("shirt", 5, 40.0 if v == "baseline" else 50.0), ("bag", 3, 10.0))]
    pd.DataFrame(rows).to_csv(tmp_path / "class_ap.csv", index=False)
    table = figures.class_ap_table(tmp_path, by="variant")
    assert list(table.columns) == ["objects", "baseline", "box_refinement"]
    assert list(table.index) == ["shirt", "bag", "mean over classes"]
    assert table.loc["shirt", "baseline"] == 41.0 and table.loc["shirt", "box_refinement"] == 51.0
    assert table.loc["bag", "objects"] == 3 and table.loc["mean over classes", "baseline"] == 26.0
    assert math.isnan(table.loc["mean over classes", "objects"])
    with pytest.raises(FileNotFoundError, match="class_ap.csv"):
        figures.class_ap_table(tmp_path / "missing")


def test_detections_are_drawn_one_row_per_chosen_detector(tmp_path):
    Image.new("L", (32, 32)).save(tmp_path / "a.png")
    detections = {"boxes": [[2.0, 2.0, 20.0, 20.0]], "scores": [0.9], "labels": [1]}
    data = {"classes": ["__background__", "shirt"], "backbones": ["baseline", "context", "box_refinement"],
            "images": [{"file": str(tmp_path / "a.png"), "image_id": 0, "gt_boxes": [[1.0, 1.0, 20.0, 21.0]],
                        "gt_labels": [1], "detections": dict.fromkeys(["baseline", "context", "box_refinement"],
                                                                      detections)}]}
    (tmp_path / "detections.json").write_text(json.dumps(data))
    fig = figures.plot_detections(tmp_path, n=1, detectors=["box_refinement", "baseline"])
    assert [ax.get_ylabel() for ax in fig.axes] == ["box_refinement", "baseline"]
    assert all(len(ax.patches) == 2 for ax in fig.axes)  # the ground truth and the detection
    with pytest.raises(ValueError, match="multiscale"):
        figures.plot_detections(tmp_path, n=1, detectors=["multiscale"])
