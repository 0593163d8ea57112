"""Fig. 4 / Table 2 experiment: plain vs residual ImageNet nets on class folders."""

import json

import pandas as pd
import pytest

from resnetlib import paper
from resnetlib.config import ConfigError, deep_merge, load_yaml, validate
from resnetlib.data import DataNotFoundError
from resnetlib.experiments import imagenet_plain_vs_residual as exp
from resnetlib.reproduce import params_file_for

NOT_MEASURABLE = "not measurable at this scale"
TINY = dict(stand_in={"dataset": "synthetic", "image_size": 16}, device="cpu",
            train={"data": {"name": "imagefolder", "train_size": 32, "test_size": 8, "scale": [16, 20], "crop": 16},
                   "optim": {"batch_size": 8, "iterations": 2, "milestones": [1]}, "eval_every": 1,
                   "eval_batch_size": 8, "threads": 1})


def test_tiny_run_exports_trains_and_reuses(tmp_path):
    params = exp.Params(**TINY, output_dir=str(tmp_path / "out"), runs_dir=str(tmp_path / "runs"))
    results = exp.run(params)
    export = tmp_path / "runs" / "exports" / "synthetic-16px-train32-val8"
    assert json.loads((export / "export.json").read_text())["train_images"] == 32
    curves = pd.read_csv(tmp_path / "out" / "curves.csv")
    assert curves.groupby(["kind", "depth"]).ngroups == 4 and set(curves.iteration) == {1, 2}
    assert {"kind", "depth", "seed", "iteration", "train_error", "test_error"} <= set(curves.columns)
    final = pd.read_csv(tmp_path / "out" / "final_errors.csv")
    assert final.test_error.between(0, 100).all() and (final.train_images_per_s > 0).all()
    assert results["stand_in"] and "standing in for ImageNet" in results["scale"]
    assert {c["verdict"] for c in results["claims"]} == {NOT_MEASURABLE}  # synthetic data
    assert {c["id"] for c in results["claims"]} >= {"fig4_plain_degradation", "table2_resnet34_top1"}

    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    exp.run(params)  # the export and the trained nets are reused
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == runs


def curves(make_curves, plain18, plain34, res18, res34, iterations=200, last_milestone=150):
    """Per-seed final training errors of the four nets (validation error three points above)."""
    finals = {("plain", 18): plain18, ("plain", 34): plain34, ("resnet", 18): res18, ("resnet", 34): res34}
    return make_curves(finals, iterations=iterations, last_milestone=last_milestone, test_offset=3.0)


def cpu_params(**extra):
    data = load_yaml(params_file_for("imagenet_plain_vs_residual", "cpu"))
    return validate(exp.Params, deep_merge({**data, "profile": "cpu", "seeds": [0, 1, 2]}, extra))


def test_claims_follow_the_per_seed_measurements(make_curves):
    params = cpu_params()
    assert params.epochs() >= 3 and not params.at_paper_scale()
    assert params.base_config().optim.milestones == [100, 150]  # fractions of the 200 iterations
    table = curves(make_curves, [10, 11, 10.5], [14, 15.5, 14], [9, 9.5, 9], [7, 7.5, 6.5])
    verdicts = {c.id: c.verdict for c in exp.claims_from(params, table)}
    assert verdicts["fig4_plain_degradation"] == "reproduced"
    assert verdicts["fig4_resnet_deeper_lower_train_error"] == "reproduced"
    assert verdicts["table2_resnet_beats_plain"] == "reproduced"
    assert verdicts["table2_plain34_top1"] == NOT_MEASURABLE
    table = curves(make_curves, [10, 11, 10.5], [10.5, 10.5, 11], [9, 9.5, 9], [9, 9, 9])
    verdicts = {c.id: c.verdict for c in exp.claims_from(params, table)}
    assert verdicts["fig4_plain_degradation"] == "inconclusive"  # effects +0.5, -0.5, +0.5
    short = cpu_params(train={"optim": {"iterations": 50, "milestones": [25]}})
    table = curves(make_curves, [10], [14], [9], [7], iterations=50, last_milestone=25)
    assert {c.verdict for c in exp.claims_from(short, table)} == {NOT_MEASURABLE}


def test_plain34_stuck_near_chance_is_an_optimisation_failure_not_the_degradation(make_curves):
    table = curves(make_curves, [30, 31, 30.5], [88, 89, 88.5], [9, 9.5, 9], [7, 7.5, 6.5])
    claims = {c.id: c for c in exp.claims_from(cpu_params(), table)}
    for cid in ("fig4_plain_degradation", "table2_resnet_beats_plain"):
        assert claims[cid].verdict == NOT_MEASURABLE and "plain-34 (seed 0) did not train" in claims[cid].reason
    assert claims["fig4_resnet_deeper_lower_train_error"].verdict == "reproduced"


def test_paper_profile_compares_table2(make_curves):
    data = load_yaml(params_file_for("imagenet_plain_vs_residual", "paper"))
    params = validate(exp.Params, {**data, "profile": "paper"})
    assert params.at_paper_scale() and params.base_config().optim.milestones == [150_000, 300_000]
    top1 = {f"{k}{d}": paper.value(f"table2.top1.{k}{d}") for k in ("plain", "resnet") for d in (18, 34)}
    table = curves(make_curves, *([top1[n] - 3] for n in ("plain18", "plain34", "resnet18", "resnet34")),
                   iterations=600_000, last_milestone=300_000)
    claims = {c.id: c.verdict for c in exp.claims_from(params, table)}
    assert claims["table2_resnet34_top1"] == "reproduced" and claims["table2_plain18_top1"] == "reproduced"


def test_validation_and_missing_imagenet(tmp_path):
    with pytest.raises(ConfigError, match="crop"):
        validate(exp.Params, {"train": {"data": {"crop": 48}}})
    with pytest.raises(ConfigError, match="val_size"):  # class folders test on val/: no val_size, no padding
        validate(exp.Params, {"train": {"data": {"val_size": 100}}})
    with pytest.raises(ConfigError, match="class folders"):
        validate(exp.Params, {"train": {"data": {"name": "fashion_mnist"}}})
    with pytest.raises(ConfigError, match="Table 1"):
        validate(exp.Params, {"depths": [20]})
    params = exp.Params(stand_in=None, data_root=str(tmp_path / "nowhere"))
    with pytest.raises(DataNotFoundError, match="train"):
        exp.class_folders(params)


def test_crops_that_flatten_conv5_make_the_statements_not_measurable():
    from resnetlib.experiments.class_folders import final_map_side, spatial_problem
    from resnetlib.experiments.training import trained_enough

    assert [final_map_side(c) for c in (32, 64, 96, 224)] == [1, 2, 3, 7]
    assert spatial_problem(64) is None and "1x1" in spatial_problem(32)
    small = exp.Params(train={"data": {"train_size": 512, "scale": [32, 40], "crop": 32},
                          "optim": {"iterations": 64, "batch_size": 32}})
    ok, why = trained_enough(small, small.depths)
    assert not ok and "conv5_x runs on 1x1 maps" in why
    large = exp.Params(stand_in={"image_size": 64}, train={"data": {"train_size": 512, "scale": [64, 80], "crop": 64},
                                                      "optim": {"iterations": 64, "batch_size": 32}})
    assert large.scale_problem() is None and trained_enough(large, large.depths)[0]
