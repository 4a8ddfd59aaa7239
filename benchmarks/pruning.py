"""The same grid with and without early stopping: what pruning finds, and what it costs.

    python -m benchmarks.pruning                      # 16 cells (lr x dropout), GRU on PTB
    python -m benchmarks.pruning --steps 300 --out bench/pruning

Runs `lmexp.train -m` twice on one grid, `prune=none` then `prune=asha` (or `--prune median`),
one job after another in each (the local launcher), and prints side by side: the best
validation perplexity found and its configuration, the CPU-seconds of each whole sweep
(user + system time of its processes, from the OS), and the training tokens all its jobs
consumed. Target (docs/sweeps.md): the best configuration the same, or within 2 % of its
perplexity, at no more than 40 % of the unpruned compute.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

LRS = ("0.1", "1", "5", "20")
DROPOUTS = ("0.0", "0.2", "0.4", "0.6")


def sweep_args(args: argparse.Namespace, prune: str, sweep: Path) -> list[str]:
    return [
        "-m",
        f"model={args.model}",
        "optim=sgd",
        f"optim.lr={','.join(args.lrs)}",
        f"model.dropout={','.join(args.dropouts)}",
        f"model.emb_size={args.size}",
        f"model.hidden_size={args.size}",
        "trainer.max_epochs=null",
        f"trainer.max_steps={args.steps}",
        f"trainer.eval_every={args.eval_every}",
        f"prune={prune}",
        *(args.prune_options if prune != "none" else []),
        f"threads={args.threads}",
        "trainer.progress=off",
        f"hydra.sweep.dir={sweep}",
    ]


def run_sweep(args: argparse.Namespace, prune: str, sweep: Path) -> dict[str, float]:
    """One whole sweep; its CPU-seconds are those of the processes it ran (children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    cmd = [sys.executable, "-m", "lmexp.train", *sweep_args(args, prune, sweep)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"the {prune} sweep failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"cpu_s": cpu, "wall_s": wall, **summarise(sweep)}


def summarise(sweep: Path) -> dict:
    """The sweep's best job (lowest best validation ppl of a job not stopped early) and the
    training tokens of every job."""
    jobs = []
    for job in sorted(sweep.iterdir()):
        summary_file = job / "summary.json"
        if summary_file.is_file():
            jobs.append(json.loads(summary_file.read_text()))
    finished = [j for j in jobs if j.get("status") == "completed" and j.get("best_val_ppl")]
    best = min(finished, key=lambda j: j["best_val_ppl"])
    overrides = best["command"].split()
    config = " ".join(o for o in overrides if o.startswith(("optim.lr=", "model.dropout=")))
    return {
        "best_val_ppl": best["best_val_ppl"],
        "best_config": config or best["command"],
        "tokens": sum(int(j.get("tokens") or 0) for j in jobs),
        "jobs": len(jobs),
        "pruned": sum(j.get("status") == "pruned" for j in jobs),
        "statuses": {
            s: sum(j.get("status") == s for j in jobs) for s in {j["status"] for j in jobs}
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pruning",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", default="gru")
    parser.add_argument("--lrs", nargs="+", default=list(LRS))
    parser.add_argument("--dropouts", nargs="+", default=list(DROPOUTS))
    parser.add_argument("--size", type=int, default=100, help="embedding and hidden width")
    parser.add_argument("--steps", type=int, default=1600, help="steps per job (1.2 epochs)")
    parser.add_argument("--eval-every", type=float, default=0.1, help="epochs between evals")
    parser.add_argument(
        "--prune-options",
        nargs="*",
        default=[],
        help="overrides of the pruned sweep, e.g. prune.min_resource=3 (default: none, the "
        "rule's defaults)",
    )
    parser.add_argument("--prune", default="asha", choices=("asha", "median"))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=Path("outputs/bench_pruning"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    results = {
        prune: run_sweep(args, prune, args.out / f"{stamp}-{prune}")
        for prune in ("none", args.prune)
    }
    plain, pruned = results["none"], results[args.prune]
    rows = [
        ("best val ppl", f"{plain['best_val_ppl']:.2f}", f"{pruned['best_val_ppl']:.2f}"),
        ("its configuration", plain["best_config"], pruned["best_config"]),
        ("CPU-seconds", f"{plain['cpu_s']:.0f}", f"{pruned['cpu_s']:.0f}"),
        ("wall-clock seconds", f"{plain['wall_s']:.0f}", f"{pruned['wall_s']:.0f}"),
        ("training tokens", f"{plain['tokens']:,}", f"{pruned['tokens']:,}"),
        (
            "jobs (pruned)",
            f"{plain['jobs']} ({plain['pruned']})",
            f"{pruned['jobs']} ({pruned['pruned']})",
        ),
    ]
    gap = pruned["best_val_ppl"] / plain["best_val_ppl"] - 1
    share = pruned["cpu_s"] / plain["cpu_s"]
    width = max(len(r[0]) for r in rows)
    print(f"{'':{width}}  {'prune=none':>28}  {'prune=' + args.prune:>28}")
    for name, a, b in rows:
        print(f"{name:{width}}  {a:>28}  {b:>28}")
    print(
        f"pruned / unpruned: {share:.0%} of the CPU-seconds, "
        f"{pruned['tokens'] / plain['tokens']:.0%} of the tokens; best val ppl {gap:+.1%}"
        f" ({'same' if plain['best_config'] == pruned['best_config'] else 'another'} configuration)"
    )
    with open(args.out / f"{stamp}.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["measure", "prune=none", f"prune={args.prune}"])
        writer.writerows(rows)
    met = share <= 0.40 and (plain["best_config"] == pruned["best_config"] or gap <= 0.02)
    print(
        "target (same best or within 2 %, at <= 40 % of the compute):", "met" if met else "NOT met"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
