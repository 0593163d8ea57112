"""Tables 3 (bottom), 4 and 5: deeper bottleneck nets, three test protocols, ensembles."""

import json

import pandas as pd
import pytest

from resnetlib import paper
from resnetlib.config import ConfigError, load_yaml, validate
from resnetlib.experiments import imagenet_deeper as exp
from resnetlib.experiments.base import Measured
from resnetlib.reproduce import params_file_for

NOT_MEASURABLE = "not measurable at this scale"
TINY = dict(stand_in={"dataset": "synthetic", "image_size": 16}, device="cpu", depths=[18, 50],
            train={"data": {"name": "imagefolder", "train_size": 32, "test_size": 8, "scale": [16, 20], "crop": 16},
                   "optim": {"batch_size": 8, "iterations": 2, "milestones": [1]}, "eval_every": 1,
                   "eval_batch_size": 8, "threads": 1},
            testing={"sides": [16, 24]})


def test_tiny_run_trains_tests_three_ways_and_ensembles(tmp_path):
    params = exp.Params(**TINY, output_dir=str(tmp_path / "out"), runs_dir=str(tmp_path / "runs"))
    results = exp.run(params)
    tests = pd.read_csv(tmp_path / "out" / "test_methods.csv")
    assert len(tests) == 2 * 3 and set(tests.method) == {"center_crop", "ten_crop", "multiscale"}
    assert tests.top1.between(0, 100).all() and (tests.images == 8).all()
    sides = pd.read_csv(tmp_path / "out" / "multiscale_sides.csv")
    assert list(sides.side) == [16, 24, 16, 24] and (sides.seeds == 1).all()
    ens = pd.read_csv(tmp_path / "out" / "ensembles.csv")
    # 16 px crops: 1x1 final maps, too small for fully-convolutional testing; the members are 10-crop tested
    assert list(ens.net) == ["ResNet-18", "ResNet-50", "ensemble of 18 + 50"] and set(ens.method) == {"ten_crop"}
    ids = {c["id"]: c["verdict"] for c in results["claims"]}
    assert {"table3_resnet50_beats_resnet18", "table4_multiscale_beats_ten_crop",
            "table5_ensemble_beats_best_member"} <= set(ids)
    assert set(ids.values()) == {NOT_MEASURABLE}  # synthetic data, 16 px crops
    assert results["test_sides"] == [16, 24]
    config = json.loads(next((tmp_path / "runs").glob("resnet18-s0-*/summary.json")).read_text())
    assert config  # trained through the run cache
    assert {c.model.shortcut for c in exp.planned_runs(params)} == {"B"}  # Sec. 4.1: option B throughout


def test_depths_need_a_basic_block_baseline_and_a_bottleneck_net():
    for depths in ([50, 101], [18, 34]):
        with pytest.raises(ConfigError, match="basic-block net"):
            validate(exp.Params, {"depths": depths})
    params = validate(exp.Params, {"depths": [18, 34, 50, 152]})
    assert params.baseline_depth() == 34 and params.bottleneck_depths() == [50, 152]
    with pytest.raises(ConfigError, match="methods"):
        validate(exp.Params, {"testing": {"methods": ["five_crop"]}})


def test_paper_keys_are_tables_3_and_4():
    assert exp.paper_error(34, "ten_crop", "top1") == paper.value("table3.top1.resnet34_B") == 24.52
    assert exp.paper_error(152, "multiscale", "top5") == paper.value("table4.top5.resnet152") == 4.49
    assert exp.paper_error(18, "multiscale", "top1") is None and exp.paper_error(50, "center_crop", "top1") is None


def test_number_claims_compare_only_at_the_papers_scale(make_curves):
    params = validate(exp.Params, {**load_yaml(params_file_for("imagenet_deeper", "paper")), "profile": "paper"})
    assert params.at_paper_scale() and params.depths == [34, 50, 101, 152]
    rows = [{"depth": d, "seed": 0, "method": m, "top1": exp.paper_error(d, m, "top1") + 0.3,
             "top5": exp.paper_error(d, m, "top5"), "images": 50_000}
            for d in params.depths for m in ("ten_crop", "multiscale")]
    verdicts = {c.id: c.verdict for c in exp.number_claims(params, pd.DataFrame(rows))}
    assert len(verdicts) == 16 and set(verdicts.values()) == {"reproduced"}
    top1_only = pd.DataFrame(rows).drop(columns="top5")  # class folders of fewer than 5 classes: no top-5 error
    assert {c.id for c in exp.number_claims(params, top1_only)} == {k for k in verdicts if "top1" in k}


def seeded_tests(ten, multi, depth=50):
    return pd.DataFrame([{"depth": depth, "seed": s, "method": m, "top1": e, "top5": 0.0, "images": 1000}
                         for m, errors in (("ten_crop", ten), ("multiscale", multi)) for s, e in enumerate(errors)])


def cpu_like(train_crop=64, **extra):
    scale = [round(train_crop * 256 / 224), round(train_crop * 480 / 224)]
    return exp.Params(stand_in={"image_size": train_crop}, seeds=[0, 1, 2], depths=[34, 50],
                      train={"data": {"train_size": 4000, "test_size": 1000, "scale": scale, "crop": train_crop},
                             "optim": {"iterations": 600, "batch_size": 64}}, **extra)


def test_ensembles_use_multiscale_testing_only_where_it_applies():
    assert exp.ensemble_method(cpu_like(train_crop=224)) == "multiscale"
    assert exp.ensemble_method(cpu_like()) == "ten_crop"
    assert exp.ensemble_method(cpu_like(testing={"methods": ["center_crop", "multiscale"]})) == "multiscale"


def test_multiscale_testing_needs_final_maps_with_interior(make_curves):
    curves = make_curves({("resnet", 34): [20, 21, 20], ("resnet", 50): [18, 19, 18]}, iterations=600,
                         last_milestone=450)
    claim = exp.multiscale_claim(cpu_like(), curves, seeded_tests([20, 21, 20.5], [16, 17, 16.2]))
    assert claim.verdict == NOT_MEASURABLE and "2x2" in claim.reason and claim.effect == pytest.approx(4.1, abs=0.01)


def test_multiscale_and_ensemble_claims_from_per_seed_effects(make_curves):
    params = cpu_like(train_crop=224)
    curves = make_curves({("resnet", 34): [20, 21, 20], ("resnet", 50): [18, 19, 18]}, iterations=600,
                         last_milestone=450)
    claim = exp.multiscale_claim(params, curves, seeded_tests([20, 21, 20.5], [16, 17, 16.2]))
    assert claim.verdict == "reproduced" and claim.effect == pytest.approx(4.1, abs=0.01)
    claim = exp.multiscale_claim(params, curves, seeded_tests([20, 21, 20.5], [22, 23.2, 22.3]))
    assert claim.verdict == "contradicted"
    ens = pd.DataFrame([{"seed": s, "member": m, "top1": e} for s in range(3)
                        for m, e in ((True, 20 + s), (True, 18 + s), (False, 15 + s + s / 10))])
    claim = exp.ensemble_claim(params, curves, ens)  # best member minus ensemble: 3.0, 2.9, 2.8
    assert claim.verdict == "reproduced" and claim.effect == pytest.approx(2.9)
    assert exp.ensemble_claim(params, curves, None).verdict == NOT_MEASURABLE


def test_nets_that_did_not_train_are_not_evidence(make_curves):
    curves = make_curves({("resnet", 34): [20, 21, 20], ("resnet", 50): [85, 86, 85]}, iterations=600,
                         last_milestone=450)
    params = cpu_like()
    measured = Measured(tables={"curves": curves, "test_methods": seeded_tests([20, 21, 20.5], [16, 17, 16.2]),
                                "ensembles": None}, dataset="", data_source="", scale="", seeds=[0, 1, 2])
    measured.tables.pop("ensembles")
    claims = {c.id: c for c in exp.claims(params, measured)}
    claim = claims["table3_resnet50_beats_resnet34"]
    assert claim.verdict == NOT_MEASURABLE and "ResNet-50 (seed 0) did not train" in claim.reason
    big = exp.multiscale_claim(cpu_like(train_crop=224), curves, measured.tables["test_methods"])
    assert big.verdict == NOT_MEASURABLE and "ResNet-50 (seed 0) did not train" in big.reason
