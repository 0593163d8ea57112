"""The paper profile's path, shrunk: every experiment's ``params/NAME/paper.yaml`` run through the runner on
tiny data sets in the real on-disk layouts (CIFAR-10 python pickles, ImageNet class folders of JPEGs, PASCAL
VOC XML, COCO JSON, ILSVRC CLS-LOC), with iterations, seeds and sizes shrunk and the device set to cpu.

Every notebook must end ok on data it has never been tuned for, every paper number must come out
``not measurable at this scale`` (far too short), and every result must name the data root it was given.

The data roots reach the runner as a user gives them, ``reproduce --data NAME=DIR`` (``data_items``), and the
device as ``--set device=cpu`` (``set_items``, applied to every experiment). The shrinking differs per
experiment (iterations of 8 for CIFAR nets, 2 for detectors; depths 20/32 or 34/50), which one ``--set``
applied to all cannot say, so :func:`shrunk_params_dir` writes each paper.yaml with its overrides merged in
into a temporary params folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from resnetlib import reproduce
from resnetlib.config import load_yaml
from resnetlib.claims import verdicts

PROFILE = "paper"
#: Which data set each experiment reads, by the names of ``reproduce --data``.
DATA_OF = {
    "cifar_degradation": "cifar10", "layer_responses": "cifar10", "resnet1202": "cifar10", "budget_study": "cifar10",
    "imagenet_plain_vs_residual": "imagenet", "shortcut_options": "imagenet", "imagenet_deeper": "imagenet",
    "detection": "voc", "detection_improvements": "coco", "localization": "ilsvrc_loc",
}
#: ImageNet-style class folders: a few wnids.
WNIDS = ("n01440764", "n01443537", "n01484850")
#: The classification checkpoint the detectors and the localizer start from (the paper's ResNet-101
#: ImageNet model, shrunk to a ResNet-18 with the paper's option B), relative to their data root.
CHECKPOINT = "pretrained/resnet18.pth"

_CIFAR = {"seeds": [0], "train.data.val_size": 16, "train.optim.batch_size": 16, "train.optim.iterations": 8,
          "train.eval_every": 2}
_FOLDERS = {"seeds": [0], "train.data.scale": [32, 40], "train.data.crop": 32, "train.data.workers": 0,
            "train.optim.batch_size": 8, "train.optim.iterations": 4, "train.eval_every": 4, "train.eval_batch_size": 8}
_DETECTOR = {"train.model.min_size": 64, "train.model.max_size": 64, "train.model.anchor_sizes": [16.0, 32.0, 64.0],
             "train.model.rois_per_image": 16, "train.model.rpn_pre_nms_train": 200, "train.model.rpn_post_nms_train": 50,
             "train.model.rpn_pre_nms_test": 100, "train.model.rpn_post_nms_test": 20, "train.model.roi_output_size": 8,
             "train.optim.batch_size": 2, "train.optim.iterations": 2, "train.optim.milestones": [1],
             "train.log_every": 1, "eval_batch_size": 2}
#: What each experiment's paper.yaml gets, as ``reproduce --set KEY=VALUE`` would give it (a value replaces
#: the whole value at its key). Depths are cut to the fewest the claims need; the nets the CIFAR experiments
#: share (plain/ResNet-20 and -32) are trained once and reused from the run cache, as at the paper's scale.
SHRINK: dict[str, dict[str, Any]] = {
    "architectures": {"include_vgg19": False},
    "cifar_degradation": {**_CIFAR, "depths": [20, 32]},
    "layer_responses": {**_CIFAR, "plain_depths": [20], "resnet_depths": [20, 32]},
    "resnet1202": {**_CIFAR, "shallow_depth": 20, "deep_depth": 32, "memory_depths": [20, 32],
                   "memory_batch_size": 2},  # the smoke profile measures ResNet-110 and -1202
    "budget_study": {**_CIFAR, "depths": [20, 32], "evaluations": 4,
                     "settings": [{"iterations": 8, "batch_size": 16}]},
    "imagenet_plain_vs_residual": _FOLDERS,
    "shortcut_options": _FOLDERS,
    "imagenet_deeper": {**_FOLDERS, "depths": [34, 50], "testing.sides": [32, 40], "testing.images": 4,
                        "testing.batch_size": 8},
    "detection": {**_DETECTOR, "backbones": ["resnet18", "vgg_c4"], "pretrained": {"resnet18": CHECKPOINT},
                  "num_workers": 0, "num_figure_images": 1},
    "detection_improvements": {**_DETECTOR, "backbone": "resnet18", "pretrained": CHECKPOINT,
                               "test_scales": [0.75, 1.0], "train_scales": [0.75, 1.0]},
    "localization": {"backbone": "resnet18", "pretrained": CHECKPOINT, "eval_batch_size": 4,
                     "train.model.min_size": 64, "train.model.max_size": 64,
                     "train.model.anchor_sizes": [16.0, 32.0, 64.0], "train.optim.batch_size": 4,
                     "train.optim.iterations": 2, "train.optim.milestones": [1], "train.log_every": 1,
                     "seeds": [0, 1], "rcnn.model.roi_output_size": 7, "rcnn.model.rois_per_image": 8,
                     "rcnn.model.rpn_post_nms_train": 8, "rcnn.model.rpn_post_nms_test": 4,
                     "rcnn.optim.batch_size": 2, "rcnn.optim.iterations": 2, "rcnn.optim.milestones": [1],
                     "rcnn.log_every": 1, "rcnn.checkpoint_every": 1},
}
#: The kernel reads the tiny CIFAR-10 files through torchvision, whose md5 check only the official release
#: passes: an IPython startup file (``$IPYTHONDIR``) relaxes it in the notebooks' kernels, as the data tests'
#: ``skip_cifar_md5`` fixture does in-process.
SKIP_CIFAR_MD5 = (
    "import os\nimport torchvision.datasets.cifar as tv_cifar\n\n"
    "tv_cifar.check_integrity = lambda fpath, md5=None: os.path.isfile(fpath)\n"
)


def _set(params: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """``params`` with the dotted ``key`` set to ``value`` (``train.optim.iterations``), as ``--set`` sets it."""
    head, _, rest = key.partition(".")
    return {**params, head: _set(params.get(head, {}), rest, value) if rest else value}


def shrunk_params_dir(target: Path, overrides: dict[str, dict[str, Any]]) -> Path:
    """A params folder whose ``NAME/paper.yaml`` is the repository's with ``overrides[NAME]`` set (as ``--set``
    sets a key; data roots and the device come from ``--data`` and ``--set`` themselves)."""
    for name in reproduce.discover_experiments():
        params = load_yaml(reproduce.params_file_for(name, PROFILE))
        for key, value in overrides.get(name, {}).items():
            params = _set(params, key, value)
        path = reproduce.params_file_for(name, PROFILE, target)
        path.parent.mkdir(parents=True)
        path.write_text(yaml.safe_dump(params))
    return target


def _write_checkpoint(path: Path) -> Path:
    import torch

    from resnetlib import models

    path.parent.mkdir(parents=True)
    torch.save(models.build("resnet18", shortcut="B").state_dict(), path)
    return path


def _paper_data(root: Path, writers) -> dict[str, Path]:
    """The five data roots, each in its release's layout, tiny; the checkpoint under those that need it."""
    from resnetlib.data.localization import write_fashion_mnist_localization

    data = {name: root / name for name in ("cifar10", "imagenet", "voc", "coco", "ilsvrc_loc")}
    writers.cifar10(data["cifar10"], per_batch=20, test=16)
    writers.jpeg_folders(data["imagenet"], classes=WNIDS, per_class=4)
    writers.voc(data["voc"], per_set=4)
    writers.coco(data["coco"], per_split=4)
    write_fashion_mnist_localization(data["ilsvrc_loc"], num_train_per_class=2, num_val=10, canvas=64)
    checkpoint = _write_checkpoint(root / "checkpoints" / "resnet18.pth")
    for name in ("voc", "coco", "ilsvrc_loc"):
        (data[name] / CHECKPOINT).parent.mkdir(parents=True)
        (data[name] / CHECKPOINT).symlink_to(checkpoint)
    return data


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory, writers):
    """(reports folder of the paper profile, outcomes, data roots) of one shrunk run of every experiment."""
    root = tmp_path_factory.mktemp("paper-path")
    data = _paper_data(root / "data", writers)
    startup = root / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-skip-cifar-md5.py").write_text(SKIP_CIFAR_MD5)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IPYTHONDIR", str(root / "ipython"))
        outcomes = reproduce.run_profile(
            PROFILE, only=reproduce.discover_experiments(), reports_dir=root / "reports", progress=False,
            params_dir=shrunk_params_dir(root / "params", SHRINK), cwd=tmp_path_factory.mktemp("cwd"),
            data_items=[f"{name}={path}" for name, path in data.items()], set_items=["device=cpu"],
        )
    return root / "reports" / PROFILE, outcomes, data


def _results(folder: Path, name: str) -> dict[str, Any]:
    return json.loads((folder / name / "results.json").read_text())


def test_the_shrunk_params_are_the_paper_files_with_the_given_values(tmp_path):
    folder = shrunk_params_dir(tmp_path / "one", {"cifar_degradation": {"depths": [20],
                                                                        "train.optim.iterations": 8}})
    paper = load_yaml(reproduce.params_file_for("cifar_degradation", PROFILE))
    shrunk = load_yaml(folder / "cifar_degradation" / "paper.yaml")
    optim = {**paper["train"]["optim"], "iterations": 8}
    assert shrunk == {**paper, "depths": [20], "train": {**paper["train"], "optim": optim}}
    assert load_yaml(folder / "architectures" / "paper.yaml") == load_yaml(
        reproduce.params_file_for("architectures", PROFILE))


@pytest.mark.slow
def test_every_experiment_is_shrunk_and_its_shrunk_params_validate(tmp_path):
    assert set(SHRINK) == set(reproduce.discover_experiments())
    folder = shrunk_params_dir(tmp_path / "params", SHRINK)
    reproduce.validate_profile(PROFILE, only=reproduce.discover_experiments(), params_dir=folder)


@pytest.mark.slow
def test_every_paper_notebook_ends_ok_on_data_in_the_real_layouts(paper_run):
    _, outcomes, _ = paper_run
    failed = {o.name: f"{o.ename}: {o.evalue}" for o in outcomes if o.status != "ok"}
    assert not failed
    assert [o.name for o in outcomes] == reproduce.discover_experiments()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DATA_OF))
def test_each_experiment_read_the_data_root_it_was_given(paper_run, name):
    folder, _, data = paper_run
    results = _results(folder, name)
    assert results["profile"] == PROFILE and results["params"]["device"] == "cpu"
    assert results["params"]["data_root"] == str(data[DATA_OF[name]])
    assert str(data[DATA_OF[name]]) in results["data_source"], results["data_source"]


@pytest.mark.slow
def test_no_paper_number_is_measurable_after_a_few_iterations(paper_run):
    folder, _, _ = paper_run
    numbers = {(name, c["id"]): c["verdict"] for name in reproduce.discover_experiments()
               for c in _results(folder, name)["claims"] if c["kind"] == "number"}
    assert numbers, "the paper profile compares paper numbers"
    assert {k: v for k, v in numbers.items() if v != verdicts.NOT_MEASURABLE} == {}
