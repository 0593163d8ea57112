"""The markdown table of a benchmark run (also stored in the JSON as ``table_markdown``), and its notes."""

from __future__ import annotations

import os
from typing import Any

from .settings import Settings

METHOD_COLUMNS = ["bare", "ours", "conventional"]
EXTRA_COLUMNS = ("conventional_fp32", "conventional_1w1t", "bare_cuda_graph")
RATIO_COLUMNS = [("ours_over_bare", "(2)/(1)"), ("ours_over_conventional", "(2)/(3)"),
                 ("ours_over_conventional_fp32", "(2)/(3')"), ("ours_over_conventional_1w1t", "(2)/(3'')")]


def mib(n: float | None) -> str:
    return "—" if n is None else f"{n / 2**20:,.0f}"


def bullets(notes: list[str]) -> list[str]:
    return [f"- {n}" for n in notes]


def render(meta: dict[str, Any], throughput: dict[str, Any], memory: dict[str, Any] | None) -> str:
    lines = [*_throughput_table(meta, throughput), *_targets_table(throughput), "", *bullets(meta["notes"])]
    if memory is not None:
        lines += _memory_section(meta, memory)
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------- throughput
def _throughput_table(meta: dict[str, Any], throughput: dict[str, Any]) -> list[str]:
    cols = METHOD_COLUMNS + [c for c in EXTRA_COLUMNS if any(c in r["methods"] for r in throughput.values())]
    ratio_cols = [(k, h) for k, h in RATIO_COLUMNS if any(k in r["ratios"] for r in throughput.values())]
    names = _method_names(meta)
    lines = [
        *_heading(meta),
        "| model | " + " | ".join(names[c] for c in cols) + " | "
        + " | ".join(h for _, h in ratio_cols) + " | steps x rounds | CPU share |",
        "|---" * (1 + len(cols) + len(ratio_cols) + 2) + "|",
    ]
    return lines + [_throughput_row(model, r, cols, ratio_cols) for model, r in throughput.items()]


def _heading(meta: dict[str, Any]) -> list[str]:
    return [
        f"# Training throughput — {meta['device_name']}",
        "",
        f"images/s, median of {meta['rounds']} interleaved rounds; batch {meta['batch']}, amp {meta['amp']}, "
        f"device {meta['device']}, {meta['threads']} torch threads, channels_last {meta['channels_last']} "
        f"(conventional: {meta.get('conventional_channels_last', False)}), "
        f"compile {meta['compile']}, torch {meta['torch']}, "
        f"host {meta['host']}, {meta['started']}.",
        f"Load average (1 min) at start {meta['loadavg_start']}, at end {meta['loadavg_end']} "
        f"on {meta['cpu_count']} logical cores.",
        *_cpu_line(meta),
        "",
    ]


def _cpu_line(meta: dict[str, Any]) -> list[str]:
    """The CPU model, torch's kernel level and flags; an instruction-set cap is called an emulation."""
    cpu = meta.get("cpu")
    if not cpu or meta.get("device") != "cpu":
        return []
    line = f"CPU: {cpu['model']}; torch kernels {cpu['capability']}; flags {', '.join(cpu['flags']) or 'none'}."
    limits = meta.get("isa_limits") or {}
    if limits:
        caps = ", ".join(f"{k}={v}" for k, v in limits.items())
        line += f" Instruction set capped by {caps}: an emulation of a CPU without the capped instructions."
    return [line]


def _method_names(meta: dict[str, Any]) -> dict[str, str]:
    amp, loader = meta["amp"], f"{meta['workers']}w+{meta['threads']}t"
    return {
        "bare": f"(1) bare [{amp}]", "ours": f"(2) ours: fit [{amp}]",
        "conventional": f"(3) conventional [{amp}, {loader}]",
        "conventional_fp32": f"(3') conventional [fp32, {loader}]",
        "conventional_1w1t": f"(3'') conventional [{amp}, 1w+1t]",
        "bare_cuda_graph": f"(1') bare + CUDA graph [{amp}]",
    }


def _throughput_row(model: str, r: dict[str, Any], cols: list[str], ratio_cols: list[tuple[str, str]]) -> str:
    cells = [f"{r['methods'][c]['img_s']:,.1f}" if c in r["methods"] else "—" for c in cols]
    ratios = [f"{r['ratios'][k]:.3f}" if k in r["ratios"] else "—" for k, _ in ratio_cols]
    shares = [x["cpu_share"] for m in r["methods"].values() for x in m["runs"] if x.get("cpu_share")]
    share = f"{min(shares):.2f}–{max(shares):.2f}" if shares else "—"
    return f"| {model} | " + " | ".join(cells + ratios) + f" | {r['iters']} x {r['rounds']} | {share} |"


def _targets_table(throughput: dict[str, Any]) -> list[str]:
    targets = [(m, t) for m, r in throughput.items() for t in r["targets"]]
    if not targets:
        return []
    lines = ["", "Targets (issue, 2-core CPU):", "",
             "| model | target | measured | status |", "|---|---|---|---|"]
    for m, t in targets:
        measured = "—" if t["measured"] is None else f"{t['measured']:.3f}"
        lines.append(f"| {m} | {t['target']} | {measured} | **{t['status']}** |")
    return lines


# ----------------------------------------------------------------------------------------------- memory
def _memory_section(meta: dict[str, Any], memory: dict[str, Any]) -> list[str]:
    cuda = meta["device"].startswith("cuda")
    ok = [v for v in memory["variants"] if "error" not in v]
    lines = ["", f"## Peak memory of one {memory['model']} training step (batch {memory['batch']}, "
                 f"amp {meta['amp']}, separate process per variant)", ""]
    lines += _memory_header(cuda, memory["target_batch"])
    lines += [_memory_row(v, cuda, memory["batch"]) for v in memory["variants"]]
    lines += _checkpointing_share(ok, cuda)
    notes = list(memory["notes"]) + ([] if cuda else [_cpu_memory_note(ok)])
    return lines + ["", *bullets(notes)]


def _memory_header(cuda: bool, target_batch: int) -> list[str]:
    if cuda:
        return ["| variant | batch | torch.cuda.max_memory_allocated MiB | step peak growth MiB | "
                "saved for backward MiB | step s |", "|---|---|---|---|---|---|"]
    return [f"| variant | batch | (a) saved for backward MiB | (a) extrapolated to batch "
            f"{target_batch} MiB | (b) peak RSS growth over the step MiB | step s |",
            "|---|---|---|---|---|---|"]


def _memory_row(v: dict[str, Any], cuda: bool, batch: int) -> str:
    label = "activation checkpointing" if v.get("activation_checkpointing") else "no checkpointing"
    if "error" in v:
        return f"| {label} | {batch} | error: {v['error'][:200]} | | | |"
    if cuda:
        return (f"| {label} | {v['batch']} | {mib(v.get('cuda_max_memory_allocated_bytes'))} | "
                f"{mib(v.get('cuda_step_peak_growth_bytes'))} | {mib(v['saved_for_backward_bytes'])} | "
                f"{v['step_seconds']} |")
    return (f"| {label} | {v['batch']} | {mib(v['saved_for_backward_bytes'])} | "
            f"{mib(v.get('saved_for_backward_bytes_extrapolated'))} | {mib(v['peak_rss_growth_bytes'])} | "
            f"{v['step_seconds']} |")


def _checkpointing_share(ok: list[dict[str, Any]], cuda: bool) -> list[str]:
    if len(ok) != 2:
        return []
    key = "cuda_max_memory_allocated_bytes" if cuda else "saved_for_backward_bytes"
    plain, ck = (v[key] for v in sorted(ok, key=lambda v: v["activation_checkpointing"]))
    what = "peak allocated memory" if cuda else "saved-for-backward bytes"
    return ["", f"Checkpointing keeps {ck / max(plain, 1):.1%} of the {what}."]


def _cpu_memory_note(ok: list[dict[str, Any]]) -> str:
    method = ok[0]["peak_rss_method"] if ok else "?"
    return ("(a) autograd's saved-for-backward tensors (saved_tensors_hooks, deduplicated by storage; "
            "weights included; with checkpointing only each block's input is kept, the rest is "
            "recomputed in backward); (b) peak RSS growth over one forward+backward+SGD step, "
            f"{method} (ru_maxrss-based numbers are in the JSON); it includes the gradients and the "
            f"momentum buffers the first SGD step creates ({mib(ok[0]['param_bytes']) if ok else '?'} "
            "MiB each) and allocator slack")


# ------------------------------------------------------------------------------------------------ notes
def run_notes(s: Settings, meta: dict[str, Any]) -> list[str]:
    """What the three methods are and how to read the numbers on this machine."""
    notes = [
        "(1) bare: forward/backward/SGD step on one device-resident random batch; (2) ours: "
        "resnetlib.train.fit on synthetic 3x32x32 data, augmentation on (pad 4 + crop + flip on the device), "
        "the loop's own images_per_s after a discarded warm-up interval; (3) conventional: torchvision-style "
        "CIFAR data set (uint8 HWC numpy, PIL RandomCrop(32, padding=4) + RandomHorizontalFlip + ToTensor + "
        f"Normalize) through DataLoader(shuffle=True, num_workers={s.workers}), same step as (1). Same SGD "
        f"({meta['optimizer']}) and {s.train_size} synthetic images everywhere.",
        "Interleaved: fit's on_evaluation callback runs each other method's chunk of the same number of "
        "steps after every fit interval (order rotating); images/s = median over rounds, ratios = median "
        "over rounds of the per-round ratios (ratio of medians in the JSON).",
    ]
    notes += _cpu_notes(s, meta) if s.device.type == "cpu" else [
        "CUDA: ours = wall time between the loop's (synchronised) evaluation callbacks; the loop's "
        "own images_per_s is in the JSON (loop_reported_img_s)."]
    if s.amp == "bf16" and s.device.type == "cpu":
        notes.append("bf16: opt-in CPU autocast (torch.autocast('cpu', torch.bfloat16)); (3') is the fp32 "
                     "conventional pipeline, the baseline of the bf16 target.")
    return notes


def _cpu_notes(s: Settings, meta: dict[str, Any]) -> list[str]:
    notes = [f"CPU: num_workers={s.workers} with {meta['threads']} compute threads, since loader workers "
             "would share the same cores with the compute threads."]
    loads = [x for x in (meta["loadavg_start"], meta["loadavg_end"]) if x is not None]
    load = max(loads) if meta["loadavg_start"] is not None else None
    if load is not None and load > 0.75 * (os.cpu_count() or 1):
        notes.append(f"Other processes were running: load average up to {load} on {os.cpu_count()} cores; "
                     "absolute numbers are depressed and noisy, the interleaved ratios less so. "
                     "'CPU share' = process CPU time / (wall x threads) over the timed steps.")
    return notes
