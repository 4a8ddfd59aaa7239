"""Training-speed benchmark: every architecture x implementation x size against a plain baseline.

    python -m benchmarks.speed                         # small + medium, every variant, this device
    python -m benchmarks.speed --archs lstm,gru --sizes small --steps 50
    python -m benchmarks.speed --sizes small,medium,large --device cuda   # large (1500) needs a GPU
    python -m benchmarks.speed --archs lstm --sizes small --profile 5     # + each row's top ops

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
import json
import sys
from datetime import datetime
from pathlib import Path

import torch

from benchmarks import write_rows
from benchmarks.speed.measure import matmul_ceiling, measure_group, measure_packing, worker
from benchmarks.speed.rows import LOAD_WARNING, SIZES, benchmarked, variants
from lmexp.runtime.device import resolve_device
from lmexp.runtime.precision import check_precision


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


def _write_csv(rows: list[dict], path: Path | None, stem: str) -> None:
    path = path or Path("outputs/bench") / f"{stem}_{datetime.now():%Y-%m-%d_%H-%M-%S}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_rows(rows, path)
    print(f"\nwrote {path}")


def _pack(args, archs: list[str], sizes: list[str], only: set[str], device) -> int:
    """`--pack`: K concurrent copies of one row per K (what jobs_per_gpu=K buys)."""
    jobs = [int(k) for k in args.pack.split(",") if k]
    rows: list[dict] = []
    for size in sizes:
        for arch in archs:
            chosen = [v for v in variants(arch, False, device.type == "cuda") if v.name in only]
            if len(chosen) != 1:
                raise SystemExit(f"--pack needs exactly one --variants name that {arch} has")
            for row in measure_packing(arch, size, chosen[0], jobs, args.steps, args):
                rows.append(row)
                print(
                    f"{arch:>11} {row['width']:>4} {row['variant']:<18} x{row['jobs']:<2} "
                    f"{row['total_tokens_per_s']:>10,.0f} tok/s in all  x{row['vs_one']}",
                    flush=True,
                )
    _write_csv(rows, args.csv, "pack")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.speed",
        description="Training speed of every architecture x implementation x size, with ratios "
        "to a plain PyTorch baseline measured in the same run.",
    )
    parser.add_argument(
        "--archs", default=",".join(benchmarked()), help="comma-separated: %(default)s"
    )
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
    parser.add_argument(
        "--pack",
        default="",
        metavar="K,K,...",
        help="instead: total tok/s of K concurrent copies of the one --variants row, per K",
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
    for name, choices, known in (
        ("--archs", archs, benchmarked()),
        ("--sizes", sizes, tuple(SIZES)),
    ):
        unknown = sorted(set(choices) - set(known))
        if unknown:
            parser.error(f"{name}: unknown {unknown}; choose from {list(known)}")
    device = resolve_device(args.device)
    if "large" in sizes and device.type != "cuda":
        parser.error("--sizes large (1500 units) is meant for a GPU; drop it on CPU")
    only = {v for v in args.variants.split(",") if v}
    if args.pack:
        return _pack(args, archs, sizes, only, device)
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
                for v in variants(arch, args.compile, device.type == "cuda")
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
    _write_csv(rows, args.csv, "bench")
    return 0


if __name__ == "__main__":
    sys.exit(main())
