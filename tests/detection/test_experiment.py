"""The detection experiment: params files, verdict rules, and a tiny run writing every file the notebook reads."""

from __future__ import annotations

import json
import math

import matplotlib
import pytest

from resnetlib import paper
from resnetlib.config import ConfigError, load_yaml, validate
from resnetlib.experiments import detection as exp
from resnetlib.paths import PARAMS_DIR

matplotlib.use("Agg")

NOT_MEASURABLE = "not measurable at this scale"


@pytest.mark.parametrize("profile", ["smoke", "cpu", "paper"])
def test_params_files_validate(profile):
    params = validate(exp.Params, load_yaml(PARAMS_DIR / "detection" / f"{profile}.yaml"))
    assert len(params.backbones) == 2
    if profile == "paper":
        assert params.dataset == "voc07" and params.backbones == ["resnet101", "vgg16"]
        resnet = params.config("resnet101")
        assert (
            resnet.optim.lr == pytest.approx(1.0e-3)
            and resnet.model.batchnorm == "frozen"
            and resnet.model.resnet.roi_output_size == 14
        )
        assert params.config("vgg16").model.resnet is None  # VGG has no ResNet options


def test_every_backbone_gets_the_same_budget_and_its_own_name_and_checkpoint(tmp_path):
    ckpt = tmp_path / "r18.pt"
    ckpt.write_bytes(b"weights")
    params = exp.Params(pretrained={"resnet18": str(ckpt)}, seed=3, device="cpu", data_root="/data")
    resnet, vgg = (exp.detector_config(params, b) for b in params.backbones)
    assert (resnet.model.name, vgg.model.name) == ("resnet18", "vgg_small")
    assert resnet.optim == vgg.optim and resnet.data == vgg.data and resnet.data.root == "/data"
    assert resnet.model.pretrained == str(ckpt) and len(resnet.model.pretrained_sha256) == 64
    assert vgg.model.pretrained == "" and (resnet.seed, resnet.device) == (3, "cpu")
    assert resnet.optim.warmup.mode == "linear" and resnet.optim.warmup.iterations == 2


def test_params_reject_bad_values():
    with pytest.raises(ConfigError, match="unknown backbone"):
        validate(exp.Params, {"backbones": ["resnet18", "alexnet"]})
    with pytest.raises(ConfigError, match="not in backbones"):
        validate(exp.Params, {"pretrained": {"resnet50": "x.pt"}})
    with pytest.raises(ConfigError, match="did you mean 'iterations'"):
        validate(exp.Params, {"train": {"optim": {"iteration": 3}}})
    with pytest.raises(ConfigError, match="set seed"):
        validate(exp.Params, {"train": {"seed": 3}})
    with pytest.raises(ConfigError, match="do not fit"):
        validate(exp.Params, {"train": {"data": {"scale_range": [1.0, 3.0]}}})


def _metrics(resnet: float, vgg: float) -> dict:
    def one(v):
        return {"coco_map": v, "coco_map50": 2 * v, "voc07_map": 3 * v, "voc_map": 3 * v}

    return {"resnet101": one(resnet), "vgg16": one(vgg), "resnet18": one(resnet), "vgg_small": one(vgg)}


def test_claims_at_reduced_scale_are_not_measurable():
    params = exp.Params(train={"optim": {"iterations": 10}})
    claims = {c.id: c for c in exp._claims(params, _metrics(5.0, 1.0), num_test=8)}
    assert set(claims) == {
        "table8_coco_map_resnet101", "table8_coco_map_vgg16", "table8_coco_map50_resnet101",
        "table8_coco_map50_vgg16", "table7_voc07_map_resnet101", "table7_voc07_map_vgg16", "resnet_beats_vgg",
    }  # fmt: skip
    assert all(c.verdict == NOT_MEASURABLE for c in claims.values())
    assert claims["table8_coco_map_resnet101"].paper == paper.value("table8.coco_map.resnet101")
    statement = claims["resnet_beats_vgg"]
    assert statement.ours == pytest.approx(4.0) and statement.paper == pytest.approx(6.0)
    assert "needs >= 100 iterations" in statement.reason


def test_statement_judged_on_a_long_enough_run():
    params = exp.Params(train={"optim": {"iterations": exp.MIN_ITERATIONS_FOR_CLAIM["scenes"]}})
    n = exp.MIN_TEST_IMAGES_FOR_CLAIM
    won = {c.id: c for c in exp._claims(params, _metrics(9.0, 4.0), num_test=n)}["resnet_beats_vgg"]
    assert won.verdict == "reproduced" and "from scratch" in won.reason
    tie = {c.id: c for c in exp._claims(params, _metrics(5.0, 4.0), num_test=n)}["resnet_beats_vgg"]
    assert tie.verdict == "not reproduced"  # +1 point is within the margin
    assert exp.CLAIM_MARGIN == 2.0


def test_paper_scale_voc07_compares_numbers():
    params = exp.Params(
        backbones=["resnet101", "vgg16"],
        pretrained={"resnet101": "r.pt", "vgg16": "v.pt"},
        train={"data": {"name": "voc07"}, "optim": {"iterations": 80_000}},
    )
    metrics = {
        "resnet101": {"voc07_map": 76.0, "coco_map": 0, "coco_map50": 0, "voc_map": 0},
        "vgg16": {"voc07_map": 70.0, "coco_map": 0, "coco_map50": 0, "voc_map": 0},
    }
    claims = {c.id: c for c in exp._claims(params, metrics, num_test=4952)}
    assert set(claims) == {"table7_voc07_map_resnet101", "table7_voc07_map_vgg16", "resnet_beats_vgg"}
    assert claims["table7_voc07_map_resnet101"].verdict == "reproduced"  # 76.0 vs 76.4, tolerance 1
    assert claims["table7_voc07_map_vgg16"].verdict == "not reproduced"  # 70.0 vs 73.2
    assert claims["resnet_beats_vgg"].verdict == "reproduced"  # +6 > 2
    # without ImageNet checkpoints it is not the paper's protocol
    scratch = params.model_copy(update={"pretrained": {}})
    assert all(
        c.verdict == NOT_MEASURABLE
        for c in exp._claims(scratch, metrics, num_test=4952)
        if c.id != "resnet_beats_vgg"
    )


def test_missing_voc_data_is_a_clear_error(tmp_path):
    params = exp.Params(
        train={"data": {"name": "voc07"}}, data_root=str(tmp_path), output_dir=str(tmp_path / "out")
    )
    with pytest.raises(FileNotFoundError, match="VOCdevkit"):
        exp.run(params)


@pytest.mark.slow
def test_tiny_run_writes_results_curves_detections_and_figures(tmp_path, capsys):
    params = exp.Params(
        output_dir=str(tmp_path / "out"),
        runs_dir=str(tmp_path / "runs"),
        device="cpu",
        train={"optim": {"iterations": 2}, "data": {"num_train": 8, "num_test": 3}, "log_every": 1},
        num_figure_images=2,
    )
    results = exp.run(params)
    out = tmp_path / "out"
    stored = json.loads((out / "results.json").read_text())
    assert stored["experiment"] == "detection" and stored["dataset"].startswith("Fashion-MNIST scenes")
    assert {c["id"] for c in stored["claims"]} >= {"resnet_beats_vgg", "table8_coco_map_resnet101"}
    assert all(c["verdict"] == NOT_MEASURABLE for c in stored["claims"])
    for name in params.backbones:
        m = results["metrics"][name]
        assert all(math.isfinite(m[k]) and 0 <= m[k] <= 100 for k in ("coco_map", "coco_map50", "voc07_map"))
        assert m["cached"] is False and m["backbone_macs"] > 0
    curves = (out / "curves.csv").read_text().splitlines()
    assert curves[0].startswith("backbone,iteration") and len(curves) == 1 + 2 * 2
    dets = json.loads((out / "detections.json").read_text())
    assert dets["backbones"] == params.backbones and len(dets["images"]) == 2
    assert set(dets["images"][0]["detections"]) == set(params.backbones)

    from resnetlib.detection import figures

    assert figures.plot_curves(out).axes and figures.plot_detections(out, n=2).axes
    # a second run with the same configuration reuses the trained models
    again = exp.run(params)
    assert all(m["cached"] for m in again["metrics"].values())
    assert again["metrics"]["resnet18"]["coco_map"] == pytest.approx(
        results["metrics"]["resnet18"]["coco_map"]
    )
    assert "reusing the trained run" in capsys.readouterr().out
