"""End-to-end benchmark: whole `python -m lmexp.train` processes against PyTorch's own example.

    python -m benchmarks.peer --peer-dir ~/src/examples                  # all four archs, 3 pairs
    python -m benchmarks.peer --fetch --archs lstm,gru --pairs 5         # peer fetched at its pin
    python -m benchmarks.peer --peer-dir ~/src/examples --batches 1327   # one full PTB epoch
    python -m benchmarks.peer --peer-dir ~/src/examples --threads 2 --lmexp-args "compile=true"
    python -m benchmarks.peer --dry-run --peer-dir ~/src/examples        # 20 windows, 1 pair, lstm

The peer is pytorch/examples' `word_language_model/main.py` (`--peer-dir`, `$LMEXP_PEER_DIR`,
or `--fetch` at a pinned commit with pinned digests: source.py); it is never copied into this
repository. Both programs train the same model (corpus.py, commands.py) for one epoch on one
prepared folder: PTB's train split cut to `--batches` windows of 20 x 35 tokens, then validate
and test, on the CPU unless `--device cuda`. The speed benchmark (benchmarks/speed) times
single training steps; this one times what a user waits for, start-up and data included,
because that is where two programs with the same step time still differ.

Per architecture it runs `--pairs` pairs of processes, alternating which goes first, and prints
each tool's median wall time, the ratio peer / lmexp ("x faster": above 1 lmexp finished
first), the range of the per-pair ratios, each tool's epoch (training + validation, as each
reports it) and what lies outside it, lmexp's own phase timings, and the load other processes
put on the machine. It writes the rows as CSV (default outputs/bench/peer_<time>.csv) and
every process as `<same name>_runs.csv`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import datetime
from pathlib import Path

from benchmarks.peer import corpus, report, source
from benchmarks.peer.commands import (
    PEER_SAVE,
    RUN_DIR,
    Arch,
    lmexp_command,
    parse_archs,
    peer_command,
)
from benchmarks.peer.timing import Plan, Run, RunError, check_ok, child_env, measure, timed
from benchmarks.speed.measure import REPO
from lmexp.data.download import DataError
from lmexp.data.files import resolve_root

DRY_RUN = {"batches": 20, "pairs": 1, "archs": "lstm"}
DEFAULTS = {"batches": 400, "pairs": 3, "archs": "rnn,gru,lstm,transformer"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.peer",
        description="Whole lmexp.train processes against pytorch/examples' word_language_model, "
        "same model and data, timed in alternating pairs.",
    )
    p.add_argument("--archs", help=f"comma-separated (default {DEFAULTS['archs']})")
    p.add_argument("--pairs", type=int, help="pairs of runs per arch (default 3)")
    p.add_argument("--batches", type=int, help="training windows of 20 x 35 (default 400)")
    p.add_argument("--peer-dir", help=f"pytorch/examples checkout (or ${source.ENV_VAR})")
    p.add_argument("--fetch", action="store_true", help=f"download the peer at {source.SHORT}")
    p.add_argument("--peer-base-url", default=source.BASE_URL, help="where --fetch downloads")
    p.add_argument("--peer-cache", type=Path, default=source.DEFAULT_CACHE, help="--fetch's folder")
    p.add_argument("--ptb-dir", type=Path, help="PTB's folder (default $LMEXP_DATA_DIR/ptb)")
    p.add_argument("--data-root", type=Path, default=Path("outputs/peer"), help="data-N/ go here")
    p.add_argument("--threads", type=int, help="OMP_NUM_THREADS for both, lmexp threads=N")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="both on this device")
    p.add_argument("--python", default=sys.executable, help="interpreter for both programs")
    p.add_argument("--lmexp-args", default="", help='extra lmexp overrides, e.g. "compile=true"')
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per process")
    p.add_argument("--csv", type=Path, help="CSV path (default outputs/bench/peer_<time>.csv)")
    p.add_argument("--dry-run", action="store_true", help="20 windows, 1 pair, lstm (unless set)")
    return p


def _fill_defaults(args: argparse.Namespace) -> None:
    chosen = DRY_RUN if args.dry_run else DEFAULTS
    for key, value in chosen.items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def _plan(args: argparse.Namespace, peer_dir: Path, data: Path) -> Plan:
    extra = tuple(shlex.split(args.lmexp_args))
    cuda = args.device == "cuda"

    def peer(arch: Arch, folder: Path) -> list[str]:
        return peer_command(arch, peer_dir, data, folder / PEER_SAVE, args.python, cuda)

    def lmexp(arch: Arch, folder: Path) -> list[str]:
        run_dir = folder / RUN_DIR
        return lmexp_command(arch, data, run_dir, args.python, args.threads, args.device, extra)

    return Plan(peer, lmexp, child_env(args.threads), args.timeout)


def _check_composes(plan: Plan, archs: list[Arch]) -> None:
    """Every lmexp command composes (`--cfg job`), before minutes go into timing."""
    for arch in archs:
        cmd = [*plan.lmexp(arch, Path("/nonexistent")), "--cfg", "job"]
        _, _, proc = timed(cmd, plan.env, REPO, 120.0)
        check_ok(f"lmexp config ({arch.name})", cmd, proc)


def _progress(run: Run) -> None:
    load = "—" if run.other_load is None else f"{run.other_load:.2f}"
    flag = " (under load)" if run.under_load else ""
    print(
        f"{run.arch:>11} pair {run.pair + 1} {run.tool:<5} {run.wall_s:8.2f} s  "
        f"epoch {run.phases.epoch_s:7.2f} s  other load {load}{flag}",
        flush=True,
    )


def _show_commands(plan: Plan, arch: Arch) -> None:
    tmp = Path("<tmp>")
    print(f"  lmexp: {shlex.join(plan.lmexp(arch, tmp))}")
    print(f"  peer:  {shlex.join(plan.peer(arch, tmp))}", flush=True)


def _benchmark(args: argparse.Namespace, archs: list[Arch]) -> int:
    peer_dir = source.find_peer(args.peer_dir, args.fetch, args.peer_cache, args.peer_base_url)
    ptb = args.ptb_dir or resolve_root(None, "ptb")
    prepared = corpus.prepare(ptb, args.data_root.resolve(), args.batches)
    plan = _plan(args, peer_dir, Path(prepared.root))
    _check_composes(plan, archs)
    print(f"peer {peer_dir}")
    print(
        f"data {prepared.root}: {prepared.windows} windows of {corpus.BATCH} x {corpus.SEQ_LEN} "
        f"({prepared.train_tokens:,} train tokens, vocabulary {prepared.vocab_size:,}; "
        f"{prepared.valid_unk:,} valid and {prepared.test_unk:,} test tokens mapped to <unk>)"
    )
    print(f"device {args.device}, threads {args.threads or 'default'}, python {args.python}")
    runs: list[Run] = []
    rows = []
    for arch in archs:
        _show_commands(plan, arch)
        arch_runs = measure(plan, arch, args.pairs, _progress)
        runs += arch_runs
        rows.append(report.summarise(arch, arch_runs, prepared.windows, prepared.vocab_size))
    print()
    print(report.table(rows))
    print(
        "\nmedians in seconds; × faster = peer / lmexp (above 1: lmexp is faster); epoch = "
        "training + validation as each reports it; outside = whole process − epoch"
    )
    print(report.load_legend())
    print("\nlmexp, where its time went (medians, s):")
    print("\n".join(report.phase_lines(rows)))
    print("\nnotes:")
    print("\n".join(report.notes(rows)))
    path = args.csv or Path("outputs/bench") / f"peer_{datetime.now():%Y-%m-%d_%H-%M-%S}.csv"
    report.write_csv(path, rows)
    runs_path = path.with_name(f"{path.stem}_runs.csv")
    report.write_csv(runs_path, report.run_rows(runs))
    print(f"\nwrote {path} and {runs_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _fill_defaults(args)
    for name in ("pairs", "batches", "threads"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name} {value} must be positive")
    try:
        archs = parse_archs(args.archs)
    except ValueError as err:
        parser.error(str(err))
    try:
        return _benchmark(args, archs)
    except (source.PeerError, DataError, corpus.CorpusError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except RunError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
