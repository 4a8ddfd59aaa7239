"""Timing the rows: each in a worker process of its own, driven in lockstep.

Also the machine's matmul ceiling, the load other processes put on it, and per-op profiles.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from benchmarks.speed.rows import (
    BATCH,
    SEQ_LEN,
    SIZES,
    VOCAB,
    Variant,
    config_for,
    step_for,
    train_flops_per_token,
    windows_for,
)
from lmexp.runtime import allocator
from lmexp.runtime.device import resolve_device, synchronize

REPO = Path(__file__).resolve().parents[2]


class CpuLoad:
    """Cores kept busy by *other* processes between `start` and `stop` (Linux /proc/stat)."""

    def _busy(self) -> float | None:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except OSError:
            return None
        ticks = [int(v) for v in fields]
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
        return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    def start(self) -> None:
        self.busy0, self.own0, self.t0 = self._busy(), time.process_time(), time.monotonic()

    def stop(self, also_ours: float = 0.0) -> float | None:
        """Busy cores other than this process and `also_ours` CPU seconds (our workers')."""
        busy = self._busy()
        if busy is None or self.busy0 is None:
            return None
        wall = time.monotonic() - self.t0
        own = time.process_time() - self.own0 + also_ours
        return max(0.0, (busy - self.busy0 - own) / wall)


def matmul_ceiling(device: torch.device, precision: str, n: int = 2048, reps: int = 5) -> float:
    """Best GFLOP/s of an n x n @ n x n matmul at `precision`: the machine's practical peak."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    a @ b  # warm-up
    best = math.inf
    for _ in range(reps):
        synchronize(device)
        t0 = time.perf_counter()
        a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


def profile_ops(
    step: Callable[[Tensor, Tensor], None], windows: list, device: torch.device, top: int = 8
) -> list[dict]:
    """Where one step's time goes: the `top` ops by self time over `windows`, as fractions.

    Self time (an op's own time, its children excluded) adds up to the whole step, so the
    fractions say directly which kernels bound a row: the output layer's GEMMs, the recurrent
    loop, the optimizer.
    """
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        for inputs, targets in windows:
            step(inputs, targets)
        synchronize(device)
    events = prof.key_averages()
    attr = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    total = sum(getattr(e, attr) for e in events) or 1.0
    ranked = sorted(events, key=lambda e: getattr(e, attr), reverse=True)[:top]
    return [
        {"op": e.key, "share": round(getattr(e, attr) / total, 3), "calls": e.count // len(windows)}
        for e in ranked
    ]


def worker(spec: dict, device_name: str, steps: int, warmup: int) -> None:
    """One row in a process of its own, stepping when the coordinator says so (stdin/stdout).

    Its own process, so each row runs with its own allocator settings and its peak memory is
    its own; driven in lockstep with the other rows' workers, so all rows share the same drift.
    Protocol: prints "ready" after warm-up; "step i" -> runs window i, prints wall and CPU
    seconds; "run n" -> runs n windows back to back, prints their wall seconds (the packing
    measurement); "profile a b" -> prints the top ops of windows a..b as JSON; "done" -> prints
    the peak memory (MB) as JSON and exits.
    """
    variant = Variant(**spec["variant"])
    allocator.configure(variant.allocator)
    device = resolve_device(device_name)
    _, windows = windows_for(device, warmup + steps)
    streams = torch.randint(VOCAB, (BATCH, 2 * SEQ_LEN + 1), device=device)
    step = step_for(spec["arch"], spec["size"], variant, device, streams)
    for inputs, targets in windows[:warmup]:
        step(inputs, targets)
    synchronize(device)
    print("ready", flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "step":
            inputs, targets = windows[warmup + int(args[0])]
            cpu0, t0 = time.process_time(), time.perf_counter()
            step(inputs, targets)
            synchronize(device)
            print(time.perf_counter() - t0, time.process_time() - cpu0, flush=True)
        elif command == "run":
            synchronize(device)
            t0 = time.perf_counter()
            for i in range(int(args[0])):
                inputs, targets = windows[warmup + i % steps]
                step(inputs, targets)
            synchronize(device)
            print(time.perf_counter() - t0, flush=True)
        elif command == "profile":
            chosen = windows[warmup + int(args[0]) : warmup + int(args[1])]
            print(json.dumps(profile_ops(step, chosen, device)), flush=True)
        elif command == "done":
            if device.type == "cuda":
                peak = torch.cuda.max_memory_allocated(device) / 2**20
            else:  # Linux reports ru_maxrss in KiB; libraries included, so compare rows
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(json.dumps(peak), flush=True)
            return


class _Worker:
    """The coordinator's handle on one row's worker process."""

    def __init__(self, spec: dict, args: argparse.Namespace) -> None:
        cmd = [sys.executable, "-m", "benchmarks.speed", "--worker", json.dumps(spec)]
        cmd += ["--device", args.device, "--steps", str(args.steps), "--warmup", str(args.warmup)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        self.name = f"{spec['arch']}/{spec['size']}/{spec['variant']['name']}"
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO,  # where `benchmarks` imports from, whatever folder the run started in
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # it prints "ready" once warm: the caller reads it, so workers start side by side

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def ask(self, command: str) -> str:
        self.send(command)
        return self.reply()

    def reply(self) -> str:
        assert self.proc.stdout is not None and self.proc.stderr is not None
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read()[-3000:]
            raise RuntimeError(f"benchmark row {self.name} failed:\n{err}")
        return line.strip()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def measure_group(
    arch: str, size: str, group: list[Variant], args: argparse.Namespace
) -> list[dict]:
    """Time every variant of one architecture and size, each in its own worker, interleaved.

    Round r runs one step of each variant, in an order rotated by r, and each variant's figure
    is its median step time. Drift in the machine's speed (this one is shared) then hits every
    variant alike, so the ratios to the baseline hold even when the absolute figures move.
    """
    device = resolve_device(args.device)
    workers: list[_Worker] = []
    try:
        for variant in group:
            spec = {"arch": arch, "size": size, "variant": asdict(variant)}
            workers.append(_Worker(spec, args))
        for w in workers:
            w.reply()  # "ready": all started at once, each warmed up in its own process
        times: list[list[float]] = [[] for _ in group]
        worker_cpu = 0.0
        load = CpuLoad()
        load.start()
        for r in range(args.steps):
            for k in np.roll(np.arange(len(group)), r).tolist():
                wall, cpu = (float(v) for v in workers[k].ask(f"step {r}").split())
                times[k].append(wall)
                worker_cpu += cpu
        others = load.stop(also_ours=worker_cpu)
        profiles = [
            json.loads(w.ask(f"profile 0 {min(args.profile, args.steps)}")) if args.profile else []
            for w in workers
        ]
        peaks = [json.loads(w.ask("done")) for w in workers]
    finally:
        for w in workers:
            w.close()
    rows = []
    for variant, seconds, ops, peak in zip(group, times, profiles, peaks, strict=True):
        step_s = statistics.median(seconds)
        tok_s = BATCH * SEQ_LEN / step_s
        flops = train_flops_per_token(config_for(arch, size, variant.model))
        rows.append(
            {
                "arch": arch,
                "size": size,
                "width": SIZES[size],
                "variant": variant.name,
                "precision": variant.precision,
                "allocator": variant.allocator,
                "device": str(device),
                "threads": args.threads or torch.get_num_threads(),
                "tokens_per_s": round(tok_s, 1),
                "ms_per_step": round(1000 * step_s, 2),
                "peak_mem_mb": round(peak, 1),
                "mflops_per_token": round(flops / 1e6, 2),
                "gflops": round(flops * tok_s / 1e9, 2),
                "other_load_cores": None if others is None else round(others, 2),
                "top_ops": ops,
            }
        )
    return rows


def measure_packing(
    arch: str, size: str, variant: Variant, jobs: list[int], steps: int, args: argparse.Namespace
) -> list[dict]:
    """Total tokens/s of K copies of one row training at once on one device, for each K.

    Each copy is a process of its own, as packed sweep jobs are (jobs_per_gpu); all run
    `steps` windows back to back, started together. K = 1 is the same work done one job after
    another, so `vs_one` says what packing buys.
    """
    rows: list[dict] = []
    for k in jobs:
        spec = {"arch": arch, "size": size, "variant": asdict(variant)}
        workers = [_Worker(spec, args) for _ in range(k)]
        try:
            for w in workers:
                w.reply()
            for w in workers:
                w.send(f"run {steps}")
            walls = [float(w.reply()) for w in workers]
            for w in workers:
                w.ask("done")
        finally:
            for w in workers:
                w.close()
        tok_s = k * steps * BATCH * SEQ_LEN / max(walls)
        rows.append(
            {
                "arch": arch,
                "width": SIZES[size],
                "variant": variant.name,
                "jobs": k,
                "total_tokens_per_s": round(tok_s, 1),
                "per_job_tokens_per_s": round(tok_s / k, 1),
            }
        )
    one = rows[0]["total_tokens_per_s"] if rows and rows[0]["jobs"] == 1 else None
    for row in rows:
        row["vs_one"] = None if one is None else round(row["total_tokens_per_s"] / one, 2)
    return rows
