"""ImageNet-layout training (Sec. 3.4 augmentation, 10-crop test) on a small class-folder export."""

import pytest

from resnetlib import data
from resnetlib.train import fit, load_config


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("folders")
    small = data.load("synthetic", train_size=64, test_size=20)
    return data.export_image_folder(small, root / "export", image_size=40)


def test_imagefolder_training_runs_and_evaluates_ten_crops(folders, tmp_path):
    cfg = load_config(None, [
        "model.name=resnet18", "data.name=imagefolder", f"data.root={folders}", "data.scale=[36, 44]",
        "data.crop=32", "optim.batch_size=16", "optim.iterations=6", "optim.milestones=[]", "eval_every=3",
        "eval_batch_size=8", "device=cpu", "log=none", "threads=1",
    ])
    result = fit(cfg, tmp_path / "run")
    assert [r["iteration"] for r in result.metrics] == [3, 6]
    assert 0 <= result.metrics[-1]["test_error"] <= 100
    assert result.summary["num_classes"] == 10 and "10-crop" in result.summary["data"]


def test_loader_batches_resume_mid_epoch_in_the_same_order(folders):
    import torch

    from resnetlib.data.loader import LoaderBatches
    from resnetlib.data.imagenet import imagenet_loaders

    train_loader, _, _ = imagenet_loaders(folders, 8, workers=0, scale=(40, 40), crop=40, color=False)
    ds = train_loader.dataset
    a = LoaderBatches(ds, 16, seed=3, device=torch.device("cpu"), workers=0)
    b = LoaderBatches(ds, 16, seed=3, device=torch.device("cpu"), workers=0)
    labels_a = [a.batch(i)[1] for i in range(6)]
    assert torch.equal(b.batch(4)[1], labels_a[4])  # a fresh reader jumps straight to batch 4
    two = [LoaderBatches(ds, 16, seed=3, device=torch.device("cpu"), workers=0).batch(2, r, 2)[1] for r in (0, 1)]
    assert sorted(torch.cat(two).tolist()) == sorted(labels_a[2].tolist())
