"""Numbers formatted for people: one formatting module for the notebooks and the index page."""

import math

import pandas as pd
import pytest
from pydantic import BaseModel

from resnetlib.report import tables
from resnetlib.report.tables import DASH


@pytest.mark.parametrize("value, unit, text", [
    (1794805760, None, "1.79 G"),
    (272474, None, "0.27 M"),
    (19421642, None, "19.42 M"),
    (1234, None, "1,234"),
    (0.5, None, "0.50"),
    (1.8e9, "M", "1,800.00 M"),
    (float("nan"), None, DASH),
    (None, None, DASH),
])
def test_fmt_count(value, unit, text):
    assert tables.fmt_count(value, unit=unit) == text


def test_fmt_percent_number_bytes_seconds():
    assert tables.fmt_percent(8.75) == "8.75%" and tables.fmt_percent(math.nan) == DASH
    assert tables.fmt_number(270000.0) == "0.27 M" and tables.fmt_number(1.800000e09) == "1.80 G"
    assert tables.fmt_number(3.14159) == "3.14" and tables.fmt_number(7) == "7"
    assert tables.fmt_number(True) == "yes" and tables.fmt_number("text") == "text"
    assert tables.fmt_number(pd.NA) == DASH
    assert tables.fmt_bytes(1572864) == "1.50 MiB" and tables.fmt_bytes(512) == "512 B"
    assert tables.fmt_seconds(114.5) == "1:54" and tables.fmt_seconds(3725) == "1:02:05"


@pytest.mark.parametrize("value, what, text", [
    (1.795, "resnet18 multiply-adds (G)", "1.79 G"),
    (0.27, "cifar_resnet20 parameters (M)", "0.27 M"),
    (88.28, "ResNet-20 test error, best of 1 seed(s) (%)", "88.28%"),
    (27.2, "COCO val mAP@[.5,.95], ResNet-101 (%); ours: resnet18 on scenes", "27.20%"),
    (-15.62, "ResNet-32 has lower training error (percentage points)", "-15.62"),
    ("yes", "a statement (percentage points)", "yes"),
    (None, "x (%)", DASH),
])
def test_claim_values_in_the_unit_of_their_label(value, what, text):
    assert tables.fmt_claim_value(value, what) == text


def test_tidy_formats_by_column_name_and_never_shows_nan():
    df = pd.DataFrame({
        "model": ["resnet18", "cifar_resnet20"],
        "params": [11689512, 272474],
        "macs": [1814073344.0, 40551936.0],
        "paper_macs": [1.8e9, float("nan")],
        "test_error": [8.75, float("nan")],
        "activation_bytes_per_image": [1572864, 2048],
        "seconds": [1.23456, 2.0],
    })
    html = tables.tidy(df, hide_index=True).to_html()
    for text in ["11.69 M", "0.27 M", "1.81 G", "40.55 M", "1.80 G", "8.75%", "1.50 MiB", "2.00 KiB", "1.23"]:
        assert text in html, text
    assert "nan" not in html.lower() and "1.800000e+09" not in html and "270000.0" not in html
    assert html.count(DASH) == 2


def test_tidy_with_a_pivot_and_explicit_roles():
    final = pd.DataFrame({"depth": [20, 20, 32, 32], "kind": ["plain", "resnet"] * 2,
                          "train_error": [10.0, 9.0, 12.5, 8.25]})
    html = tables.tidy(final.pivot(index="depth", columns="kind", values=["train_error"])).to_html()
    assert "12.50%" in html and "8.25%" in html
    html = tables.tidy(pd.DataFrame({"x": [5.0]}), percent=["x"]).to_html()
    assert "5.00%" in html


class Optim(BaseModel):
    lr: float = 0.1
    milestones: list[float] = [0.5, 0.75]


class Train(BaseModel):
    optim: Optim = Optim()
    iterations: int = 64000
    threads: int | None = None


class Params(BaseModel):
    depths: list[int] = [20, 32]
    train: Train = Train()
    amp: bool = False


def test_params_table_flattens_nested_sections():
    table = tables.params_table(Params())
    assert list(table.index) == ["depths", "train.optim.lr", "train.optim.milestones", "train.iterations",
                                 "train.threads", "amp"]
    assert table.index.name == "parameter" and list(table.columns) == ["value"]
    values = table["value"].to_dict()
    assert values == {"depths": "20, 32", "train.optim.lr": "0.1", "train.optim.milestones": "0.5, 0.75",
                      "train.iterations": "64000", "train.threads": DASH, "amp": "no"}
    assert tables.params_table({"train": {}, "seeds": []})["value"].to_dict() == {"train": DASH, "seeds": DASH}


def test_claims_table_formats_ours_and_paper():
    results = {"claims": [{"id": "a", "ref": "Table 1", "what": "resnet18 multiply-adds (G)", "ours": 1.795,
                           "paper": 1.8, "verdict": "reproduced", "reason": "r"},
                          {"id": "b", "ref": "Table 6", "what": "error (%)", "ours": None, "paper": 8.75,
                           "verdict": "not measurable at this scale", "reason": "r"}]}
    html = tables.claims_table(results).to_html()
    assert "1.79 G" in html and "1.80 G" in html and "8.75%" in html and DASH in html
    assert "nan" not in html.lower() and "None" not in html
    assert list(tables.claims_frame(results)["ours"])[:1] == [1.795]  # the raw frame is untouched
    assert "scope" in tables.claims_frame(results).columns  # every verdict says where it holds
