"""The Table 9 experiment: params files, the detectors it trains per seed, gains paired by seed, the
paper's steps, and the rule that a baseline which has not learnt to detect is no evidence."""

from __future__ import annotations

import pandas as pd
import pytest

from resnetlib.config import ConfigError, load_yaml, validate
from resnetlib.experiments import detection_improvements as exp
from resnetlib.paths import PARAMS_DIR

NOT_MEASURABLE = "not measurable at this scale"


@pytest.mark.parametrize("profile", ["smoke", "cpu", "cpu-long", "paper"])
def test_params_files_validate(profile):
    params = validate(exp.Params, load_yaml(PARAMS_DIR / "detection_improvements" / f"{profile}.yaml"))
    base = params.detection_params(params.seeds[0]).base_config()
    if profile == "paper":
        assert base.data.name == "coco" and params.backbone == "resnet101" and base.model.min_size == 600
        assert [round(600 * s) for s in params.test_scales] == [200, 400, 600, 800, 1000]
    if profile in ("cpu", "cpu-long"):  # the detection notebook's budget, so its baseline is the same net
        detection = load_yaml(PARAMS_DIR / "detection" / f"{profile}.yaml")
        assert params.train == validate(exp.detection.Params, detection).train
        assert len(params.seeds) >= 3


def test_the_three_detectors_differ_only_where_they_should(tmp_path):
    params = exp.Params(seeds=[3], train={"model": {"min_size": 64, "max_size": 64}}, runs_dir=str(tmp_path))
    configs = params.detector_configs(3, checkpoint="")
    base, context, multi = configs["baseline"], configs["context"], configs["multiscale_training"]
    assert list(configs) == list(exp.DETECTORS)
    assert base.seed == 3 and not base.model.global_context and base.model.train_min_sizes == []
    assert context.model_dump() == {**base.model_dump(), "model": {**base.model.model_dump(), "global_context": True}}
    assert multi.model.train_min_sizes == [48, 64, 80] and multi.model.max_size == 80
    # the baseline is exactly the detection notebook's detector (one cached run serves both)
    assert base == exp.detection.detector_config(params.detection_params(3), "resnet18", "")


def test_bad_parameters_are_named():
    with pytest.raises(ConfigError, match="backbone"):
        validate(exp.Params, {"backbone": "vgg16"})
    with pytest.raises(ConfigError, match=r"1\.0"):
        validate(exp.Params, {"test_scales": [0.5, 2.0]})
    with pytest.raises(ConfigError, match="seeds"):
        validate(exp.Params, {"seeds": [1, 1]})
    with pytest.raises(ConfigError, match="min_sise"):
        validate(exp.Params, {"train": {"model": {"min_sise": 64}}})


def metrics_frame(base=(20.0, 22.0, 21.0), refine_gain=(1.0, 2.0, 1.5)):
    rows = []
    for seed, (b, g) in enumerate(zip(base, refine_gain)):
        for v in exp.VARIANTS:
            step = {"baseline": 0.0, "+box refinement": g}.get(v.name, g + 0.1)
            rows.append({"seed": seed, "variant": v.name, "coco_map": b / 2 + step, "coco_map50": b + step,
                         "test_macs": 2.0 if v.box_refinement else 1.0})
    return pd.DataFrame(rows)


def test_gains_are_paired_by_seed_beside_table9():
    metrics = metrics_frame()
    assert exp.paired_gains(metrics, "baseline", "+box refinement", "coco_map") == [1.0, 2.0, 1.5]
    table = exp.gains(metrics).set_index("variant")
    assert table.loc["+box refinement", "gain_map"] == pytest.approx(1.5)
    assert table.loc["+box refinement", "paper_gain_map"] == pytest.approx(29.9 - 27.2, abs=0.05)
    assert pd.isna(table.loc["context alone", "paper_gain_map"])
    assert table.loc["+box refinement", "test_macs_vs_baseline"] == pytest.approx(2.0)


def test_the_paper_steps_are_table9_rows_minus_the_row_above():
    steps = {s.id: exp._step_gain_in_paper(s) for s in exp.STEPS}
    assert steps == {"table9_box_refinement": 2.7, "table9_context": 1.2, "table9_multiscale_testing": 2.5}


def test_claims_need_a_trained_baseline_and_enough_budget():
    params = exp.Params(seeds=[0, 1, 2])

    def judged(metrics, iterations=120, num_test=100):
        measured = exp.Measured(tables={"metrics": metrics}, dataset="scenes", data_source="x", scale="x",
                                seeds=[0, 1, 2], scratch={"num_test": num_test, "iterations": iterations,
                                                          "dataset": "scenes"})
        return {c.id: c for c in exp.claims(params, measured)}

    good = judged(metrics_frame())
    assert good["table9_box_refinement"].verdict == "reproduced" and good["table9_box_refinement"].paper == 2.7
    assert good["table9_context"].verdict == "inconclusive"  # +0.1 over refinement: below the margin
    assert judged(metrics_frame(), iterations=20)["table9_box_refinement"].verdict == NOT_MEASURABLE
    untrained = judged(metrics_frame(base=(2.0, 3.0, 2.5)))["table9_box_refinement"]
    assert untrained.verdict == NOT_MEASURABLE and "detects too little" in untrained.reason
    assert "'baseline' detects too little" in untrained.reason


def test_every_step_gates_both_of_its_detectors():
    """The global-context detector at 3.4 mAP@.5 (cpu-long) stops the context step and the multi-scale step
    on top of it, not box refinement; a constant classifier stops its steps too."""
    params = exp.Params(seeds=[0, 1, 2])
    metrics = metrics_frame()
    context = metrics.variant.isin(["+box refinement +context", "+box refinement +context +multi-scale testing",
                                    "context alone"])
    weak = metrics.assign(coco_map50=metrics.coco_map50.where(~context, 3.4))
    measured = exp.Measured(tables={"metrics": weak}, dataset="scenes", data_source="x", scale="x", seeds=[0, 1, 2],
                            scratch={"num_test": 100, "iterations": 120, "dataset": "scenes"})
    claims = {c.id: c for c in exp.claims(params, measured)}
    assert claims["table9_box_refinement"].verdict == "reproduced"
    for step in ("table9_context", "table9_multiscale_testing"):
        assert claims[step].verdict == NOT_MEASURABLE
        assert "'+box refinement +context' detects too little (mAP@.5 3.4 < 10)" in claims[step].reason
    constant = metrics.assign(class_fraction=[0.1 if c else 1.0 for c in context])
    measured.tables["metrics"] = constant
    claims = {c.id: c for c in exp.claims(params, measured)}
    assert claims["table9_context"].verdict == NOT_MEASURABLE and "has not learnt to classify" in claims[
        "table9_context"].reason


@pytest.mark.slow
def test_a_tiny_run_writes_the_per_class_aps_and_every_variants_detections(tmp_path):
    params = exp.Params(
        output_dir=str(tmp_path / "out"), runs_dir=str(tmp_path / "runs"), device="cpu", seeds=[0],
        pretrain={"iterations": 0}, test_scales=[0.5, 1.0], max_test_images=3,
        train={"optim": {"iterations": 1}, "data": {"num_train": 4, "num_test": 3}, "log_every": 1},
    )
    outcome = exp.run(params)
    out = tmp_path / "out"
    class_ap = outcome.class_ap
    assert set(class_ap.variant) == {v.name for v in exp.VARIANTS} and (class_ap.seed == 0).all()
    assert len(class_ap) == len(exp.VARIANTS) * 10  # 10 Fashion-MNIST classes per variant
    from resnetlib.report import detection_figures as figures

    table = figures.class_ap_table(out, by="variant")
    assert list(table.columns) == ["objects", *(v.name for v in exp.VARIANTS)]
    voc = outcome.metrics.set_index("variant").voc07_map
    assert table.loc["mean over classes", "baseline"] == pytest.approx(voc["baseline"])
    names = [v.name for v in exp.VARIANTS]
    fig = figures.plot_detections(out, n=2, detectors=names[:2])  # the first seed's detectors
    assert [ax.get_ylabel() for ax in fig.axes[::2]] == names[:2]
