"""Training-speed benchmark: every architecture x implementation x size against a plain baseline.

    python -m lmexp.bench                         # small + medium, every variant, this device
    python -m lmexp.bench --archs lstm,gru --sizes small --steps 50
    python -m lmexp.bench --sizes small,medium,large --device cuda   # large (1500) needs a GPU
    python -m lmexp.bench --archs lstm --sizes small --profile 5     # + each row's top ops

Each row trains one configuration (batch 20, seq_len 35, 2 layers, vocabulary 10,000, SGD with
clipping at 0.25). lmexp rows time `Trainer.train_step`, the step real runs take, with lmexp's
default `cpu_allocator=tuned` (lmexp/runtime/allocator.py); the `baseline` row of each
architecture and size is the standard recipe written plainly (fp32 `nn.RNN`/`nn.GRU`/`nn.LSTM` or
`nn.TransformerEncoder`, embedding -> module -> linear -> cross-entropy -> clip -> SGD) run with
the system allocator, as a plain script runs, and every row reports its speed as a ratio to it.
`baseline+malloc` is that same code with lmexp's allocator settings, so the table separates
what the allocator buys from what the code paths buy. Every row runs in a process of its own
(its own allocator, its own peak memory); the rows of one architecture and size are driven in
lockstep, one step each in rotating order after `--warmup` steps, and report their median step
time: this machine's speed drifts by +-20 % between minutes, and rows timed one after the
other would carry that drift into their ratios. Token ids are random: the cost of a step does
not depend on which ids it sees.

Printed and written as CSV: tokens/s, ms/step, peak memory, training FLOPs per token (6 x the
multiply-adds of a forward pass), achieved GFLOP/s and its fraction of a matmul ceiling measured
here at the row's precision, and the cores other processes kept busy while the row was timed.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmexp.config import ModelConfig, TrainerConfig
from lmexp.models import LanguageModel, build_model, compile_features
from lmexp.models.transformer import sinusoidal_positions
from lmexp.runtime import allocator
from lmexp.runtime.device import resolve_device, synchronize
from lmexp.runtime.precision import check_precision
from lmexp.training.trainer import Trainer

VOCAB, BATCH, SEQ_LEN, LAYERS = 10_000, 20, 35, 2
SIZES = {"small": 200, "medium": 650, "large": 1500}
HEADS = {"small": 4, "medium": 10, "large": 12}  # transformer heads: d_k = 50, 65, 125
ARCHS = ("rnn", "gru", "lstm", "transformer")
LOAD_WARNING = 0.25  # cores busy with other work above which a row is flagged "under load"


@dataclass(frozen=True)
class Variant:
    """One implementation of an architecture: `model` holds the ModelConfig fields it sets."""

    name: str
    model: dict = field(default_factory=dict)
    precision: str = "fp32"
    compile: bool = False
    baseline: bool = False
    allocator: str = "tuned"  # lmexp's cpu_allocator default; the plain baseline: "system"


def variants(arch: str, with_compile: bool) -> list[Variant]:
    """The rows of one architecture, baseline first."""
    if arch == "transformer":
        rows = [
            Variant("baseline", baseline=True, allocator="system"),
            Variant("baseline+malloc", baseline=True),
            Variant("scratch", {"attn_impl": "scratch"}),
            Variant("sdpa", {"attn_impl": "sdpa"}),
            Variant("sdpa+bf16", {"attn_impl": "sdpa"}, "bf16"),
        ]
        compiled = Variant("sdpa+compile", {"attn_impl": "sdpa"}, compile=True)
    else:
        rows = [
            Variant("baseline", baseline=True, allocator="system"),
            Variant("baseline+malloc", baseline=True),
            Variant("scratch", {"impl": "scratch"}),
            Variant("scratch+bf16", {"impl": "scratch"}, "bf16"),
        ]
        fused = {"impl": "fused"}
        if arch == "gru":
            rows.append(Variant("scratch reset_after", {"gru_variant": "reset_after"}))
            fused = {"impl": "fused", "gru_variant": "reset_after"}
        rows += [Variant("fused", fused), Variant("fused+bf16", fused, "bf16")]
        compiled = Variant("scratch+compile", {"impl": "scratch"}, compile=True)
    return [*rows, compiled] if with_compile else rows


def model_config(arch: str, size: str, overrides: dict) -> ModelConfig:
    width = SIZES[size]
    extra = {"num_heads": HEADS[size], "ff_size": 4 * width} if arch == "transformer" else {}
    return ModelConfig(
        name=arch, emb_size=width, hidden_size=width, num_layers=LAYERS, **extra, **overrides
    )


def train_flops_per_token(cfg: ModelConfig, seq_len: int = SEQ_LEN) -> float:
    """6 x forward multiply-adds per token (forward 2 MACs -> FLOPs, backward twice that).

    Counts the matmuls only (they are nearly all of the arithmetic): the recurrent input and
    hidden projections, or attention projections, scores, weighted sums and feed-forward, and the
    softmax projection. The scores and weighted sums count the full T x T window, as computed.
    """
    h, v = cfg.hidden_size, VOCAB
    if cfg.name == "transformer":
        per_layer = 4 * h * h + 2 * h * cfg.ff_size + 2 * seq_len * h
        macs = cfg.num_layers * per_layer + h * v
    else:
        gates = {"rnn": 1, "gru": 3, "lstm": 4}[cfg.name]
        inputs = [cfg.emb_size] + [h] * (cfg.num_layers - 1)
        macs = sum(gates * h * (i + h) for i in inputs) + h * v
    return 6.0 * macs


class PlainRecurrent(nn.Module):
    """The standard recipe: embedding -> nn.RNN/GRU/LSTM -> linear, nothing else."""

    def __init__(self, arch: str, width: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, width)
        layer = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[arch]
        self.recurrent = layer(width, width, num_layers=LAYERS, batch_first=True)
        self.output = nn.Linear(width, VOCAB)

    def forward(self, tokens: Tensor, state):
        x, state = self.recurrent(self.embedding(tokens), state)
        return self.output(x), state


class PlainTransformer(nn.Module):
    """The standard recipe: embedding + positions -> nn.TransformerEncoder (causal) -> linear."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.width = width
        self.embedding = nn.Embedding(VOCAB, width)
        self.register_buffer("positions", sinusoidal_positions(SEQ_LEN, width), persistent=False)
        layer = nn.TransformerEncoderLayer(
            width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.output = nn.Linear(width, VOCAB)

    def forward(self, tokens: Tensor, state=None):
        length = tokens.shape[1]
        x = self.embedding(tokens) * math.sqrt(self.width) + self.positions[:length]
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=tokens.device)
        x = self.encoder(x, mask=mask, is_causal=True)
        return self.output(self.norm(x)), None


def _baseline_step(arch: str, size: str, device: torch.device) -> Callable[[Tensor, Tensor], None]:
    width = SIZES[size]
    if arch == "transformer":
        model: nn.Module = PlainTransformer(width, HEADS[size]).to(device)
    else:
        model = PlainRecurrent(arch, width).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    zeros = torch.zeros(LAYERS, BATCH, width, device=device)
    hidden = None if arch == "transformer" else (zeros, zeros.clone()) if arch == "lstm" else zeros
    state = {"h": hidden}

    def step(inputs: Tensor, targets: Tensor) -> None:
        logits, state["h"] = model(inputs, LanguageModel.detach_state(state["h"]))
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()

    return step


def _lmexp_step(
    cfg: ModelConfig, variant: Variant, device: torch.device, streams: Tensor
) -> Callable[[Tensor, Tensor], None]:
    model = build_model(cfg, VOCAB).to(device)
    trainer = Trainer(
        compile_features(model) if variant.compile else model,
        torch.optim.SGD(model.parameters(), lr=1.0),
        lambda epoch: 1.0,
        streams,
        streams[:, : SEQ_LEN + 1],
        SEQ_LEN,
        TrainerConfig(max_steps=1, clip_norm=0.25, checkpoint_every=None, progress="off"),
        on_eval=lambda point: None,
        precision=variant.precision,
    )
    state = {"h": model.init_state(BATCH, device)}

    def step(inputs: Tensor, targets: Tensor) -> None:
        state["h"] = trainer.train_step(inputs, targets, state["h"])

    return step


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


def _windows(device: torch.device, n: int) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
    """Random token streams and their `n` (inputs, targets) windows (the same in every worker)."""
    torch.manual_seed(0)
    streams = torch.randint(VOCAB, (BATCH, n * SEQ_LEN + 1), device=device)
    starts = range(0, n * SEQ_LEN, SEQ_LEN)
    windows = [(streams[:, i : i + SEQ_LEN], streams[:, i + 1 : i + SEQ_LEN + 1]) for i in starts]
    return streams, windows


def _step_for(arch: str, size: str, variant: Variant, device: torch.device, streams: Tensor):
    if variant.baseline:
        return _baseline_step(arch, size, device)
    return _lmexp_step(model_config(arch, size, variant.model), variant, device, streams)


def worker(spec: dict, device_name: str, steps: int, warmup: int) -> None:
    """One row in a process of its own, stepping when the coordinator says so (stdin/stdout).

    Its own process, so each row runs with its own allocator settings and its peak memory is
    its own; driven in lockstep with the other rows' workers, so all rows share the same drift.
    Protocol: prints "ready" after warm-up; "step i" -> runs window i, prints wall and CPU
    seconds; "profile a b" -> prints the top ops of windows a..b as JSON; "done" -> prints the
    peak memory (MB) as JSON and exits.
    """
    variant = Variant(**spec["variant"])
    allocator.configure(variant.allocator)
    device = resolve_device(device_name)
    _, windows = _windows(device, warmup + steps)
    streams = torch.randint(VOCAB, (BATCH, 2 * SEQ_LEN + 1), device=device)
    step = _step_for(spec["arch"], spec["size"], variant, device, streams)
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
        cmd = [sys.executable, "-m", "lmexp.bench", "--worker", json.dumps(spec)]
        cmd += ["--device", args.device, "--steps", str(args.steps), "--warmup", str(args.warmup)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        self.name = f"{spec['arch']}/{spec['size']}/{spec['variant']['name']}"
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.reply()  # "ready"

    def ask(self, command: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
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
        flops = train_flops_per_token(model_config(arch, size, variant.model))
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


def _table(rows: list[dict]) -> str:
    cols = [
        ("arch", "arch"),
        ("width", "width"),
        ("variant", "impl"),
        ("tokens_per_s", "tok/s"),
        ("vs_baseline", "× baseline"),
        ("ms_per_step", "ms/step"),
        ("peak_mem_mb", "peak MB"),
        ("mflops_per_token", "MFLOP/tok"),
        ("gflops", "GFLOP/s"),
        ("frac_of_ceiling", "of peak"),
        ("other_load_cores", "other load"),
    ]
    lines = ["| " + " | ".join(h for _, h in cols) + " |", "|" + " --- |" * len(cols)]
    for row in rows:
        cells = []
        for key, _ in cols:
            value = row.get(key)
            if key == "vs_baseline" and value is not None:
                value = f"{value:.2f}"
            elif key == "frac_of_ceiling" and value is not None:
                value = f"{100 * value:.0f} %"
            elif key == "other_load_cores" and value is not None:
                value = f"{value:.2f}" + (" (under load)" if value > LOAD_WARNING else "")
            cells.append("—" if value is None else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lmexp.bench",
        description="Training speed of every architecture x implementation x size, with ratios "
        "to a plain PyTorch baseline measured in the same run.",
    )
    parser.add_argument("--archs", default=",".join(ARCHS), help="comma-separated: %(default)s")
    parser.add_argument("--sizes", default="small,medium", help="small=200, medium=650, large=1500")
    parser.add_argument("--variants", default="", help="only these impl names (comma-separated)")
    parser.add_argument("--compile", action="store_true", help="add torch.compile rows")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per row")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before timing")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads per row")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="also profile N steps of every row and print its top ops by self time",
    )
    parser.add_argument("--csv", type=Path, default=None, help="CSV path (default outputs/bench/)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal, see worker()
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:  # internal: one row's process, driven by measure_group
        worker(json.loads(args.worker), args.device, args.steps, args.warmup)
        return 0

    archs = [a for a in args.archs.split(",") if a]
    sizes = [s for s in args.sizes.split(",") if s]
    for name, choices, known in (("--archs", archs, ARCHS), ("--sizes", sizes, tuple(SIZES))):
        unknown = sorted(set(choices) - set(known))
        if unknown:
            parser.error(f"{name}: unknown {unknown}; choose from {list(known)}")
    device = resolve_device(args.device)
    if "large" in sizes and device.type != "cuda":
        parser.error("--sizes large (1500 units) is meant for a GPU; drop it on CPU")
    only = {v for v in args.variants.split(",") if v}
    precisions = ["fp32"]
    try:
        check_precision("bf16", device)
        precisions.append("bf16")
    except ValueError as exc:
        print(f"bf16 rows skipped: {exc}", flush=True)
    # The ceiling is the best matmul rate seen in the run: measured at the start and again after
    # every group, because on a shared machine a single early measurement can catch a slow
    # minute (one run here measured 90 GFLOP/s at the start, 250 later).
    ceilings = {p: matmul_ceiling(device, p) for p in precisions}
    print(
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads",
        flush=True,
    )
    rows: list[dict] = []
    for size in sizes:
        for arch in archs:
            group = [
                v
                for v in variants(arch, args.compile)
                if (v.name == "baseline" or not only or v.name in only) and v.precision in ceilings
            ]
            timed = measure_group(arch, size, group, args)
            base_tok_s = timed[0]["tokens_per_s"]  # the baseline comes first
            for variant, row in zip(group, timed, strict=True):
                row["vs_baseline"] = round(row["tokens_per_s"] / base_tok_s, 3)
                ops = row.pop("top_ops", None)
                rows.append(row)
                print(
                    f"{arch:>11} {row['width']:>4} {variant.name:<20} "
                    f"{row['tokens_per_s']:>9,.0f} tok/s  ×{row['vs_baseline']:.2f}",
                    flush=True,
                )
                for op in ops or []:
                    print(f"{'':>17}{100 * op['share']:5.1f} %  {op['op']} (x{op['calls']}/step)")
            for p in ceilings:
                ceilings[p] = max(ceilings[p], matmul_ceiling(device, p))
    for row in rows:
        ceiling = ceilings[row["precision"]]
        row["ceiling_gflops"] = round(ceiling, 1)
        row["frac_of_ceiling"] = round(row["gflops"] / ceiling, 3)
    peaks = ", ".join(f"{p} {c:.0f} GFLOP/s" for p, c in ceilings.items())
    print(f"\nmatmul ceiling (best {len(sizes) * len(archs) + 1} measurements): {peaks}")
    print()
    print(_table(rows))
    path = args.csv or Path("outputs/bench") / f"bench_{datetime.now():%Y-%m-%d_%H-%M-%S}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
