"""resnetlib.devices: one device resolution and one autocast switch for the library."""

import contextlib

import pytest
import torch

from resnetlib.devices import autocast, resolve_device


def test_names_resolve_to_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    assert resolve_device("auto") == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message where CUDA is absent")
def test_cuda_asked_for_but_absent_names_the_fix():
    for name in ("cuda", "cuda:1"):
        with pytest.raises(RuntimeError, match="sees no CUDA device; use device: cpu"):
            resolve_device(name)


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="checks the message where MPS is absent")
def test_mps_asked_for_but_absent_names_the_fix():
    with pytest.raises(RuntimeError, match="no Apple MPS device; use device: cpu"):
        resolve_device("mps")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bare_cuda_is_the_local_rank():
    assert resolve_device("cuda", local_rank=0) == torch.device("cuda", 0)
    assert resolve_device("cuda:0", local_rank=5) == torch.device("cuda", 0)


def test_autocast_off_is_a_null_context_and_bf16_casts_matmuls():
    assert autocast("off", torch.device("cpu")) is contextlib.nullcontext
    a = torch.randn(4, 4)
    with autocast("bf16", "cpu")():
        assert (a @ a).dtype == torch.bfloat16
    with autocast("bf16", torch.device("cpu"), cache_enabled=False)():
        assert (a @ a).dtype == torch.bfloat16 and not torch.is_autocast_cache_enabled()


def test_cpu_features_name_the_processor_and_its_kernel_level():
    from resnetlib.devices import RECORDED_CPU_FLAGS, cpu_features

    cpu = cpu_features()
    assert cpu["model"] and cpu["capability"] == torch.backends.cpu.get_cpu_capability()
    assert set(cpu["flags"]) <= set(RECORDED_CPU_FLAGS)


def test_amp_auto_follows_the_cpu_flags(monkeypatch):
    from resnetlib import devices

    assert devices.resolve_amp("off", "cpu") == "off" and devices.resolve_amp("bf16", "cpu") == "bf16"
    assert devices.resolve_amp("auto", "cuda") == "bf16"
    for flags, expected in ((["avx2"], "off"), (["avx2", "avx512_bf16"], "bf16"), (["amx_bf16"], "bf16")):
        monkeypatch.setattr(devices, "cpu_features", lambda flags=flags: {"flags": flags})
        assert devices.resolve_amp("auto", "cpu") == expected, flags
    monkeypatch.setattr(devices, "cpu_features", lambda: {"flags": ["avx2"]})
    assert devices.autocast("auto", "cpu") is contextlib.nullcontext
