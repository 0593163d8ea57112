"""Training throughput of resnetlib's loop against a bare step and a conventional DataLoader pipeline.

Three measurements per model, side by side in one process (batch 128 by default):

  bare          forward / backward / SGD step on device-resident random tensors, the same batch every
                step: the ceiling for this model on this device (no data, no augmentation, no metrics).
  ours          ``resnetlib.train.fit`` on the 3x32x32 ``synthetic`` data set with augmentation on
                (DeviceBatches: uint8 data on the device, batched pad/crop/flip as tensor ops), with
                ``eval_every = iters`` and ``iterations = iters x (1 + rounds)``. The first interval is
                the warm-up and is discarded; for the others the loop's own ``images_per_s`` (which
                excludes evaluation time) is the result. The test set is 1 image and the only
                checkpoint is written after the last interval. On CUDA the loop stamps an interval's
                end without a device synchronisation, so there the synchronised wall time from the
                end of one ``on_evaluation`` callback to the start of the next is the result (it
                includes the 1-image evaluation); both numbers are in the JSON.
  conventional  what users usually write: a torchvision-style CIFAR data set over uint8 HWC numpy
                images (the same synthetic images) -> ``DataLoader(shuffle=True, num_workers=W)`` ->
                PIL ``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip`` + ``ToTensor`` +
                ``Normalize``, then the same step as ``bare``. On a CPU the loader workers would compete
                with the compute threads for the same cores, so the default is ``num_workers=0`` with
                ``--threads`` compute threads; ``--worker-variant`` adds a labelled "1 worker + 1
                compute thread" row-mate. On CUDA the default is min(8, cores) workers and pinned
                memory.

Noise control: the measurements of a model are interleaved in ``--rounds`` rounds of ``--iters`` steps
each. fit's ``on_evaluation`` callback, called after each of its intervals, runs the next chunk of every
other method (in an order that rotates each round); the loop restarts its interval clock after the
callback, so that time is never counted as the loop's. Load from other processes thus hits all methods
alike; the table gives the median images/s over rounds and the median of the per-round (paired)
ratios. Every chunk also records its CPU share (process CPU time / (wall time x threads)), a direct
reading of how much of the machine the benchmark actually got.

With ``--amp bf16`` (CPU autocast, opt-in) the run also measures the conventional pipeline in fp32,
the baseline of the issue's bf16 target. Targets (2-core CPU, from the issue):
  fp32: ours >= 0.95 x bare and ours >= 1.1 x conventional;  bf16: ours >= 1.5 x conventional-fp32.

Memory: peak memory of one training step of ``--mem-model`` (default ResNet-1202) with and without
activation checkpointing, each variant in a fresh subprocess. On CUDA: torch.cuda.max_memory_allocated.
On CPU: (a) bytes of the tensors autograd saves for backward (``saved_tensors_hooks``, deduplicated
by storage), measured at ``--mem-batch`` and extrapolated linearly to ``--batch`` from a second
batch-1 forward; (b) the growth of the process's peak RSS over one full step: the kernel's high-water
mark (VmHWM) is reset through /proc/self/clear_refs just before the step, because ``ru_maxrss`` of a
fresh child starts at the parent's RSS (it survives fork/exec) and would hide the step's peak; the
``ru_maxrss`` readings are kept in the JSON.

    python benchmarks/train_throughput.py                       # fp32, ResNet-20/56/110, CPU
    python benchmarks/train_throughput.py --amp bf16            # + the fp32 conventional baseline
    python benchmarks/train_throughput.py --quick               # a short smoke run
    python benchmarks/train_throughput.py --device cuda --compile --cuda-graphs
    python -m benchmarks.throughput --quick                     # the same, as a module (from the repo root)

Results: ``benchmarks/results/train_throughput-<host or GPU>[-<amp>][-quick].json`` and ``.md``.

The package: ``settings`` (command line), ``timing`` (clocks), ``bare_step`` ((1) and the shared step),
``conventional`` ((3)), ``interleave`` (the rounds around ``fit``), ``summary`` (medians, ratios,
targets), ``memory`` (the ResNet-1202 step, through ``resnetlib.analysis.memory``), ``report`` (the
markdown table), ``cli`` (``main``).
"""
