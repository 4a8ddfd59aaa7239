"""Whole sweeps of K same-shape jobs: one after another, packed, and (on a GPU) as K processes.

    python -m benchmarks.packed_sweeps --pack 1,2,4,8 --steps 100
    python -m benchmarks.packed_sweeps --device cuda --pack 16 \\
        --launchers local,packed,joblib experiment=ift6135_a2/table1_gru_adam

Each row runs the same K jobs (the base job with seeds=K: seeds s..s+K-1) as one command, once
per launcher: `launcher=local` (one after another in one process), `launcher=packed pack=K`
(one batched model) and `launcher=joblib jobs_per_gpu=K` (K processes at once). Figures are of
the whole command, start-up, data, evaluation and test passes included: its wall seconds and
the training tokens of all K jobs (their summaries' `tokens`) per wall second.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import write_rows

REPO = Path(__file__).resolve().parents[1]
LAUNCHERS = {
    "local": lambda k: ["launcher=local"],
    "packed": lambda k: ["launcher=packed", f"pack={k}"],
    "joblib": lambda k: ["launcher=joblib", f"jobs_per_gpu={k}", f"hydra.launcher.n_jobs={k}"],
}
NAMES = {"local": "one after another", "packed": "packed", "joblib": "K processes"}
# A fixed step budget, evaluated once at its end; the test pass in streams only.
BASE = [
    "trainer.max_epochs=null",
    "trainer.eval_every=null",
    "trainer.eval_every_budget=1.0",  # once, at the end of the step budget
    "trainer.test_whole=false",
    "trainer.progress=off",
]
# The job unless the overrides choose another: the default GRU (2 x 200, batch 20, 35 steps)
# with plain SGD
DEFAULT_JOB = ["model=gru", "optim=sgd"]


def run_sweep(launcher: str, k: int, steps: int, device: str, extra: list[str], out: Path) -> dict:
    """One command of K jobs; its wall seconds, the jobs' training tokens and statuses."""
    sweep = out / f"{launcher}-{k}"
    cmd = [sys.executable, "-m", "lmexp.train", "-m", *BASE, f"trainer.max_steps={steps}"]
    cmd += [f"device={device}", f"seeds={k}", *LAUNCHERS[launcher](k), *extra]
    cmd += [f"hydra.sweep.dir={sweep}"]
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    summaries = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/summary.json"))]
    statuses = sorted({s.get("status") for s in summaries})
    if done.returncode != 0 or statuses != ["completed"] or len(summaries) != k:
        raise SystemExit(f"{launcher} K={k} failed ({statuses}):\n{done.stderr[-3000:]}")
    tokens = sum(int(s["tokens"]) for s in summaries)
    return {"wall_s": wall, "tokens": tokens, "tokens_per_s": tokens / wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.packed_sweeps",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--pack", default="1,2,4,8", help="jobs per row, comma-separated")
    parser.add_argument("--steps", type=int, default=100, help="training steps of each job")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--launchers", default="local,packed", help="of: " + ",".join(LAUNCHERS))
    parser.add_argument("--csv", type=Path, help="also write the rows here")
    parser.add_argument("--out", type=Path, help="keep the sweeps here (default: a temp dir)")
    parser.add_argument(
        "--no-warmup", action="store_true", help="skip the untimed first command (a dry run)"
    )
    parser.add_argument("overrides", nargs="*", help="more overrides of the base job")
    args = parser.parse_args(argv)
    # the default job's choices, unless the overrides choose (an experiment chooses both)
    chosen = {o.split("=")[0] for o in args.overrides}
    keep = (
        [] if "experiment" in chosen else [d for d in DEFAULT_JOB if d.split("=")[0] not in chosen]
    )
    args.overrides = [*keep, *args.overrides]
    launchers = args.launchers.split(",")
    unknown = sorted(set(launchers) - set(LAUNCHERS))
    if unknown or launchers[0] != "local":
        parser.error(f"--launchers: local first, then any of {list(LAUNCHERS)}; got {launchers}")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        rows = []
        header = ["K"] + [f"{NAMES[name]}: s, tok/s" for name in launchers]
        header += [f"{NAMES[name]} / one after another" for name in launchers[1:]]
        # untimed: the first command alone would pay the cold start (file cache, corpus cache)
        if not args.no_warmup:
            run_sweep("local", 1, 1, args.device, args.overrides, out / "warmup")
        print(f"base: {' '.join(BASE + args.overrides)}, {args.steps} steps, device={args.device}")
        print("| " + " | ".join(header) + " |")
        print("|" + " --- |" * len(header), flush=True)
        for k in (int(v) for v in args.pack.split(",")):
            results = {
                name: run_sweep(name, k, args.steps, args.device, args.overrides, out)
                for name in launchers
            }
            one = results["local"]["tokens_per_s"]
            cells = [str(k)]
            cells += [f"{r['wall_s']:.1f}, {r['tokens_per_s']:,.0f}" for r in results.values()]
            cells += [f"x{results[name]['tokens_per_s'] / one:.2f}" for name in launchers[1:]]
            print("| " + " | ".join(cells) + " |", flush=True)
            for name, r in results.items():
                rows.append({"jobs": k, "launcher": name, **r, "vs_one": r["tokens_per_s"] / one})
    if args.csv is not None:
        write_rows(rows, args.csv)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
