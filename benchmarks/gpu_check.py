"""The GPU check: every CUDA claim of lmexp measured in one run and printed as one table.

    scripts/gpu_check.sh              # on a machine with a GPU: about 10 minutes
    scripts/gpu_check.sh --dry-run    # anywhere: the same plumbing at toy sizes on this device
    python -m benchmarks.gpu_check --parts tests,bench   # only some parts

Parts, in order (each a subprocess of a command users run; a part that fails is a FAIL row and
the others still run):

1. `tests`: `pytest -m cuda`, which must pass with no skip.
2. `bench`: `python -m benchmarks.speed --device cuda` at small, medium and the published large
   (1,500) width: eager vs CUDA graph, fp32 vs bf16, tokens/s, ms/step, achieved TFLOP/s and
   its share of the measured matmul peak. Targets: the scratch RNN/GRU's graph step >= 3x its
   eager rate at small width, and within 1.5x of cuDNN's fused rate at 1,500.
3. `pack`: K concurrent copies of a small scratch GRU job on one GPU (jobs_per_gpu=K), total
   tokens/s against one job alone. Target: >= 2x at the best K.
4. `packed`: K jobs trained as one batched model (`launcher=packed`, lmexp/pack/): the packed
   step of K = 1..16 small GRUs against their K steps one after another (eager and replayed
   from CUDA graphs; `python -m benchmarks.packed`), then 16 Table 1 GRU jobs as one command
   by each launcher (`python -m benchmarks.packed_sweeps`). Targets: packed >= 8x one job at a
   time, and >= 2x the same 16 jobs as jobs_per_gpu=16 processes.
5. `table1`: one epoch of each of the nine IFT6135 assignment 2 Table 1 presets at full size,
   packed on the GPU (launcher=joblib jobs_per_gpu=9), with the graph and again eagerly:
   epoch time, validation perplexity after one epoch, and the 40-epoch study's projected wall
   time. Targets: <= 30 minutes; graph and eager perplexities within noise of each other.
6. `baselines`: one epoch of each published PTB LSTM that is a GPU run (Zaremba et al. 2014's
   medium and large, `experiment=zaremba2014/...`; pytorch/examples' four README rows,
   `experiment=pytorch_examples/...`), each alone on the GPU: epoch time, validation
   perplexity, and the full run's projected time to quality. Target: Zaremba's medium <= 10
   minutes a seed (its test perplexity, <= 82.7, needs the full run:
   `sweeps/zaremba2014.sh medium`).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PARTS = ("tests", "bench", "pack", "packed", "table1", "baselines")
TABLE1 = [
    f"table1_{arch}_{optim}"
    for arch in ("rnn", "gru", "transformer")
    for optim in ("sgd", "sgd_schedule", "adam")
]
STUDY_EPOCHS = 40  # the assignment's budget (conf/trainer/ift6135_a2.yaml)
STUDY_TARGET_MIN = 30.0
GRAPH_VS_EAGER_TARGET = 3.0  # scratch RNN/GRU at batch 20
GRAPH_VS_FUSED_TARGET = 1.5  # the graph step's rate within this factor of cuDNN's, at 1,500
PACK_TARGET = 2.0
# 16 Table 1 jobs packed as one model: against one job at a time, and against 16 processes
PACKED_VS_ONE, PACKED_VS_PROCESSES = 8.0, 2.0
# the benchmark rows the check times (with each group's plain-PyTorch baseline): eager vs graph,
# fp32 vs bf16, the assignment's code vs the library kernels
GPU_VARIANTS = (
    "scratch",
    "scratch+graph",
    "scratch+graph+bf16",
    "fused",
    "fused+graph",
    "fused+bf16",
    "sdpa",
    "sdpa+bf16",
    "sdpa+graph",
    "sdpa+graph+bf16",
)
# the published PTB LSTMs that need a GPU: preset -> the projected full run's target (minutes)
BASELINES = {
    "zaremba2014/medium": 10.0,
    "zaremba2014/large": None,
    "pytorch_examples/lstm650": None,
    "pytorch_examples/lstm650_tied": None,
    "pytorch_examples/lstm1500": None,
    "pytorch_examples/lstm1500_tied": None,
}
PPL_NOISE = 0.03  # graph vs eager one-epoch perplexity: relative difference counted as noise


@dataclass
class Row:
    """One line of the table."""

    part: str
    what: str
    figure: str
    target: str = ""
    verdict: str = ""  # PASS | FAIL | SKIP (not run: --budget-s) | "" (a figure, no target)


@dataclass
class Plan:
    """What each part runs: the real sizes, or toy ones for --dry-run."""

    device: str
    sizes: str
    archs: str
    variants: str
    steps: int
    pack_jobs: str
    pack_steps: int
    packed_jobs: str  # K of the packed-step rows (lmexp/pack/: K jobs as one model)
    packed_graphs: list[bool]  # the jobs one after another eager, graphed
    packed_sweep: list[str]  # K jobs as one command: --pack K, its steps, the job
    presets: list[str]
    table1_overrides: list[str]
    baselines: list[str]  # of BASELINES
    baseline_overrides: list[str]
    dry_run: bool


def _plan(dry_run: bool) -> Plan:
    if dry_run:
        return Plan(
            device="cpu",
            sizes="small",
            archs="gru",
            variants="scratch,fused",
            steps=3,
            pack_jobs="1,2",
            pack_steps=3,
            packed_jobs="1,2",
            packed_graphs=[False],
            packed_sweep=[
                "--no-warmup",
                "--pack",
                "2",
                "--steps",
                "2",
                "--launchers",
                "local,packed",
                "model=gru",
                "model.hidden_size=16",
                "model.emb_size=16",
                "threads=1",
            ],  # fmt: skip
            presets=["table1_rnn_sgd", "table1_transformer_adam"],
            table1_overrides=[
                "trainer.max_epochs=null",
                "trainer.max_steps=3",
                "model.hidden_size=32",
                "data.batch_size=4",
                "data.eval_batch_size=20",
                "trainer.test_whole=false",  # the one-sequence test pass: minutes on a CPU
                "threads=1",
            ],
            # a paper's LSTMs and a tied pytorch/examples one: each kind of preset and projection
            baselines=["zaremba2014/medium", "zaremba2014/large", "pytorch_examples/lstm1500_tied"],
            baseline_overrides=[
                "trainer.max_steps=3",
                "model.hidden_size=32",
                "model.emb_size=32",
                "trainer.test_whole=false",
                "threads=1",
            ],
            dry_run=True,
        )
    return Plan(
        device="cuda",
        sizes="small,medium,large",
        archs="rnn,gru,lstm,transformer",
        variants=",".join(GPU_VARIANTS),
        steps=12,
        pack_jobs="1,2,4,8",
        pack_steps=300,
        packed_jobs="1,2,4,8,16",
        packed_graphs=[False, True],
        packed_sweep=[
            "--pack",
            "16",
            "--steps",
            "300",
            "--launchers",
            "local,packed,joblib",
            "experiment=ift6135_a2/table1_gru_adam",
        ],  # fmt: skip
        presets=TABLE1,
        table1_overrides=["trainer.max_epochs=1"],
        baselines=list(BASELINES),
        baseline_overrides=[],
        dry_run=False,
    )


# --budget-s: the monotonic time by which every command of the check must have ended (None: no
# budget). A lent GPU runs one command for at most a few minutes; a part cut short by the
# budget is a failed row, the parts after it are skipped, and the table so far is on disk.
_deadline: float | None = None


def _run(cmd: list[str], timeout: float, env: dict | None = None) -> subprocess.CompletedProcess:
    print(f"$ {' '.join(cmd)}", flush=True)
    if _deadline is not None:
        timeout = max(1.0, min(timeout, _deadline - time.monotonic()))
    with subprocess.Popen(
        cmd,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,  # its own group: a timeout ends the jobs it started too
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except BaseException:  # its time is up, or the check was told to stop
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def _tail(proc: subprocess.CompletedProcess, n: int = 400) -> str:
    return " ".join((proc.stderr or proc.stdout or "").split())[-n:]


def part_tests(plan: Plan, out: Path) -> list[Row]:
    if plan.dry_run:  # no GPU: the CUDA tests would all skip; prove they are there to run
        proc = _run([sys.executable, "-m", "pytest", "-m", "cuda", "--collect-only", "-q"], 300)
        found = re.search(r"(\d+)(?:/\d+)? tests? (?:collected|selected)", proc.stdout)
        count = int(found.group(1)) if found else 0
        ok = proc.returncode == 0 and count > 0
        return [Row("tests", "pytest -m cuda (collected only)", f"{count} tests", "> 0", _ok(ok))]
    proc = _run(
        [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-rs", "-p", "no:cacheprovider"], 600
    )
    counts = {k: 0 for k in ("passed", "failed", "skipped", "error")}
    for number, kind in re.findall(r"(\d+) (passed|failed|skipped|errors?)", proc.stdout):
        counts["error" if kind.startswith("error") else kind] += int(number)
    ok = proc.returncode == 0 and counts["failed"] == counts["error"] == counts["skipped"] == 0
    figure = ", ".join(f"{v} {k}" for k, v in counts.items() if v) or _tail(proc)
    rows = [Row("tests", "pytest -m cuda", figure, "all pass, no skip", _ok(ok))]
    for line in proc.stdout.splitlines():  # name what failed or skipped
        if line.startswith(("FAILED", "ERROR", "SKIPPED")):
            rows.append(Row("tests", line[:120], "", "", "FAIL"))
    return rows


def _bench_rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def part_bench(plan: Plan, out: Path) -> list[Row]:
    path = out / "bench.csv"
    cmd = [sys.executable, "-m", "benchmarks.speed", "--device", plan.device]
    cmd += ["--sizes", plan.sizes, "--archs", plan.archs, "--variants", plan.variants]
    cmd += ["--steps", str(plan.steps)]
    cmd += ["--warmup", "5" if not plan.dry_run else "4", "--csv", str(path)]
    proc = _run(cmd, 900)
    if proc.returncode != 0 or not path.exists():
        return [Row("bench", "python -m benchmarks.speed", _tail(proc), "", "FAIL")]
    rows, out_rows = _bench_rows(path), []
    by = {(r["arch"], r["width"], r["variant"]): r for r in rows}
    for r in rows:
        if r["variant"] == "baseline+malloc":
            continue
        tflops = float(r["gflops"]) / 1000
        share = float(r["frac_of_ceiling"])
        figure = (
            f"{float(r['tokens_per_s']):,.0f} tok/s, {float(r['ms_per_step']):.2f} ms/step, "
            f"{tflops:.2f} TFLOP/s ({100 * share:.0f} % of peak), x{float(r['vs_baseline']):.2f}"
            " vs plain PyTorch"
        )
        out_rows.append(Row("bench", f"{r['arch']} {r['width']} {r['variant']}", figure))
    for arch in ("rnn", "gru"):
        widths = sorted({int(w) for a, w, _ in by if a == arch})
        if not widths:
            continue
        small, large = str(widths[0]), str(widths[-1])
        eager, graph = by.get((arch, small, "scratch")), by.get((arch, small, "scratch+graph"))
        if eager and graph:
            ratio = float(graph["tokens_per_s"]) / float(eager["tokens_per_s"])
            out_rows.append(
                Row(
                    "bench",
                    f"{arch} {small}: graph vs eager step",
                    f"x{ratio:.2f}",
                    f">= x{GRAPH_VS_EAGER_TARGET}",
                    _ok(ratio >= GRAPH_VS_EAGER_TARGET),
                )
            )
        graph, fused = by.get((arch, large, "scratch+graph")), by.get((arch, large, "fused"))
        if graph and fused:
            gap = float(fused["tokens_per_s"]) / float(graph["tokens_per_s"])
            out_rows.append(
                Row(
                    "bench",
                    f"{arch} {large}: cuDNN fused vs scratch+graph",
                    f"fused x{gap:.2f} faster",
                    f"<= x{GRAPH_VS_FUSED_TARGET}",
                    _ok(gap <= GRAPH_VS_FUSED_TARGET),
                )
            )
    return out_rows


def part_pack(plan: Plan, out: Path) -> list[Row]:
    path = out / "pack.csv"
    variant = "scratch" if plan.dry_run else "scratch+graph"
    cmd = [sys.executable, "-m", "benchmarks.speed", "--device", plan.device, "--archs", "gru"]
    cmd += ["--sizes", "small", "--variants", variant, "--pack", plan.pack_jobs]
    cmd += ["--steps", str(plan.pack_steps), "--warmup", "5", "--csv", str(path)]
    proc = _run(cmd, 600)
    if proc.returncode != 0 or not path.exists():
        return [Row("pack", "python -m benchmarks.speed --pack", _tail(proc), "", "FAIL")]
    rows = _bench_rows(path)
    out_rows = [
        Row(
            "pack",
            f"gru {r['width']} {r['variant']}, {r['jobs']} job(s) at once",
            f"{float(r['total_tokens_per_s']):,.0f} tok/s in all, x{r['vs_one']} vs one job",
        )
        for r in rows
    ]
    best = max(rows, key=lambda r: float(r["vs_one"] or 0))
    speedup = float(best["vs_one"] or 0)
    out_rows.append(
        Row(
            "pack",
            f"best K = {best['jobs']}",
            f"x{speedup:.2f} the tokens/s of jobs run one after another",
            f">= x{PACK_TARGET}",
            "" if plan.dry_run else _ok(speedup >= PACK_TARGET),  # 2 CPU cores: no verdict
        )
    )
    return out_rows


def part_packed(plan: Plan, out: Path) -> list[Row]:
    """K jobs as one batched model (launcher=packed): the step against the K jobs' steps one
    after another (eager and graphed), then whole commands of K jobs by each launcher."""
    rows: list[Row] = []
    for graph in plan.packed_graphs:
        path = out / f"packed_step{'_graph' if graph else ''}.csv"
        cmd = [sys.executable, "-m", "benchmarks.packed", "--device", plan.device]
        cmd += ["--archs", "gru", "--sizes", "small", "--pack", plan.packed_jobs]
        cmd += ["--steps", str(plan.steps), "--csv", str(path), *(["--graph"] if graph else [])]
        proc = _run(cmd, 600)
        if proc.returncode != 0 or not path.exists():
            rows.append(Row("packed", "python -m benchmarks.packed", _tail(proc), "", "FAIL"))
            continue
        for r in _bench_rows(path):
            rows.append(
                Row(
                    "packed",
                    f"gru small step, {r['jobs']} jobs as one model vs one after another "
                    f"({'graphed' if graph else 'eager'})",
                    f"x{float(r['vs_one']):.2f} ({float(r['packed_tokens_per_s']):,.0f} against "
                    f"{float(r['sequential_tokens_per_s']):,.0f} tok/s)",
                )
            )
    path = out / "packed_sweeps.csv"
    cmd = [sys.executable, "-m", "benchmarks.packed_sweeps", "--device", plan.device]
    cmd += ["--csv", str(path), "--out", str(out / "packed_sweeps"), *plan.packed_sweep]
    proc = _run(cmd, 1200)
    if proc.returncode != 0 or not path.exists():
        return [*rows, Row("packed", "python -m benchmarks.packed_sweeps", _tail(proc), "", "FAIL")]
    by_launcher = {r["launcher"]: r for r in _bench_rows(path)}
    k = next(iter(by_launcher.values()))["jobs"]
    for name, r in by_launcher.items():
        rows.append(
            Row(
                "packed",
                f"{k} jobs in one command, launcher={name}",
                f"{float(r['wall_s']):.1f} s, {float(r['tokens_per_s']):,.0f} tok/s",
            )
        )
    packed = float(by_launcher["packed"]["tokens_per_s"])
    one = packed / float(by_launcher["local"]["tokens_per_s"])
    rows.append(
        Row(
            "packed",
            f"{k} jobs packed vs one at a time",
            f"x{one:.2f}",
            f">= x{PACKED_VS_ONE:.0f}",
            "" if plan.dry_run else _ok(one >= PACKED_VS_ONE),
        )
    )
    if "joblib" in by_launcher:
        processes = packed / float(by_launcher["joblib"]["tokens_per_s"])
        rows.append(
            Row(
                "packed",
                f"{k} jobs packed vs {k} processes (jobs_per_gpu={k})",
                f"x{processes:.2f}",
                f">= x{PACKED_VS_PROCESSES:.0f}",
                "" if plan.dry_run else _ok(processes >= PACKED_VS_PROCESSES),
            )
        )
    return rows


def _sweep(plan: Plan, out: Path, name: str, extra: list[str]) -> tuple[dict, float, str]:
    """One packed Table 1 sweep: {preset: (first metrics row, summary)}, its wall seconds, and
    the error text if the sweep failed."""
    sweep = out / name
    presets = ",".join(f"ift6135_a2/{p}" for p in plan.presets)
    cmd = [sys.executable, "-m", "lmexp.train", "-m", f"experiment={presets}"]
    cmd += ["launcher=joblib", f"jobs_per_gpu={len(plan.presets)}", f"device={plan.device}"]
    cmd += [*plan.table1_overrides, *extra, "trainer.progress=off", f"hydra.sweep.dir={sweep}"]
    started = time.monotonic()
    proc = _run(cmd, 1200)
    wall = time.monotonic() - started
    results = {}
    for summary_path in sorted(sweep.glob("*/summary.json")):
        summary = json.loads(summary_path.read_text())
        preset = re.search(r"experiment=ift6135_a2/(\S+)", summary.get("command", ""))
        metrics = summary_path.parent / "metrics.csv"
        rows = _bench_rows(metrics) if metrics.exists() else []
        if preset:
            results[preset.group(1)] = (rows[0] if rows else {}, summary)
    return results, wall, "" if proc.returncode == 0 else _tail(proc)


def _once_per_run_s(summary: dict) -> float:
    """What a run pays once, whatever its epochs: start-up, data, model build, test."""
    timings = summary.get("timings", {})
    return sum(timings.get(k, 0.0) for k in ("startup_s", "data_s", "build_s", "test_s"))


def part_table1(plan: Plan, out: Path) -> list[Row]:
    graph, graph_s, error = _sweep(plan, out, "table1_graph", [])
    if plan.dry_run:  # on the CPU every step is eager already: the same sweep again
        eager, eager_s, eager_error = {}, 0.0, ""
    else:
        eager, eager_s, eager_error = _sweep(plan, out, "table1_eager", ["cuda_graph=off"])
    rows: list[Row] = []
    if error or eager_error:
        rows.append(Row("table1", "sweep", error or eager_error, "", "FAIL"))
    projected: list[float] = []
    for preset in plan.presets:
        (row, summary), (eager_row, _) = graph.get(preset, ({}, {})), eager.get(preset, ({}, {}))
        if not row or summary.get("status") != "completed":
            rows.append(Row("table1", preset, f"status {summary.get('status')}", "", "FAIL"))
            continue
        epoch_s, ppl = float(row["epoch_time_s"]), float(row["val_ppl"])
        fixed = _once_per_run_s(summary)
        projected.append(STUDY_EPOCHS * epoch_s + fixed)
        figure = (
            f"epoch {epoch_s:.1f} s, val ppl {ppl:.1f}, graph {summary.get('cuda_graph', 'off')}"
        )
        if "peak_gpu_mem_mb" in summary:
            figure += f", peak {summary['peak_gpu_mem_mb']:,.0f} MB"
        if eager_row:
            eager_ppl = float(eager_row["val_ppl"])
            diff = abs(ppl - eager_ppl) / eager_ppl if math.isfinite(eager_ppl) else math.inf
            figure += (
                f"; eager: epoch {float(eager_row['epoch_time_s']):.1f} s, ppl {eager_ppl:.1f}"
            )
            close = diff <= PPL_NOISE or plan.dry_run  # 3 toy steps: not a comparison
            rows.append(
                Row("table1", preset, figure, f"ppl within {PPL_NOISE:.0%} of eager", _ok(close))
            )
        else:
            rows.append(Row("table1", preset, figure))
    if projected:
        minutes = max(projected) / 60
        rows.append(
            Row(
                "table1",
                f"projected {STUDY_EPOCHS}-epoch study, all {len(plan.presets)} runs packed",
                f"{minutes:.1f} min (slowest run; {sum(projected) / 60:.0f} min one after another)",
                f"<= {STUDY_TARGET_MIN:.0f} min",
                _ok(minutes <= STUDY_TARGET_MIN) if not plan.dry_run else "",
            )
        )
    rows.append(
        Row(
            "table1",
            "packed one-epoch sweeps (graph, eager)",
            f"{graph_s:.0f} s, " + ("not run (dry run)" if plan.dry_run else f"{eager_s:.0f} s"),
        )
    )
    return rows


def _preset_epochs(preset: str) -> int:
    """A preset's own epoch budget, as the preset composes (its yaml, or the base it uses)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lmexp.train",
            f"experiment={preset}",
            "--cfg",
            "job",
            "-p",
            "trainer.max_epochs",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return int(float(done.stdout.split(":")[-1]))


def part_baselines(plan: Plan, out: Path) -> list[Row]:
    """One epoch of each published baseline alone on the device, projected to its full run:
    its epochs x the epoch's time + what a run pays once (startup, data, build, test)."""
    rows: list[Row] = []
    for preset in plan.baselines:
        target = BASELINES[preset]
        run_dir = out / preset.replace("/", "_")
        cmd = [sys.executable, "-m", "lmexp.train", f"experiment={preset}"]
        cmd += [f"device={plan.device}", "trainer.progress=off", f"hydra.run.dir={run_dir}"]
        cmd += [*plan.baseline_overrides]
        proc = _run(cmd + ["trainer.max_epochs=1"], 900)
        summary_path, metrics = run_dir / "summary.json", run_dir / "metrics.csv"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        metric_rows = _bench_rows(metrics) if metrics.exists() else []
        if proc.returncode != 0 or summary.get("status") != "completed" or not metric_rows:
            error = _tail(proc) if proc.returncode else f"status {summary.get('status')}"
            rows.append(Row("baselines", preset, error, "", "FAIL"))
            continue
        first = metric_rows[0]
        epoch_s, ppl = float(first["epoch_time_s"]), float(first["val_ppl"])
        fixed = _once_per_run_s(summary)
        epochs = _preset_epochs(preset)
        minutes = (epochs * epoch_s + fixed) / 60
        figure = (
            f"epoch {epoch_s:.1f} s ({float(first['tokens_per_s']):,.0f} tok/s), "
            f"val ppl {ppl:.1f} after one; {epochs} epochs projected {minutes:.1f} min"
        )
        if "peak_gpu_mem_mb" in summary:
            figure += f", peak {summary['peak_gpu_mem_mb']:,.0f} MB"
        verdict = _ok(minutes <= target) if target is not None and not plan.dry_run else ""
        want = f"<= {target:.0f} min a seed" if target is not None else ""
        rows.append(Row("baselines", preset, figure, want, verdict))
    return rows


def _ok(good: bool) -> str:
    return "PASS" if good else "FAIL"


def _environment(plan: Plan) -> list[Row]:
    import torch

    if plan.device == "cuda" and torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        count = torch.cuda.device_count()
        device = (
            f"{name} x{count}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}"
        )
    else:
        from lmexp.runtime.device import device_name

        device = f"{device_name(torch.device('cpu'))} (dry run: toy sizes)"
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [Row("machine", device, f"torch {torch.__version__}, {when}")]


def table(rows: list[Row]) -> str:
    lines = ["| part | what | measured | target | verdict |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r.part} | {r.what} | {r.figure} | {r.target} | {r.verdict} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/gpu_check.sh", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="toy sizes on this device (no GPU needed)"
    )
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated: %(default)s")
    parser.add_argument("--out", type=Path, default=None, help="folder for the CSVs and sweeps")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help="end every part within this many seconds; parts left are skipped (default: none)",
    )
    args = parser.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"--parts: unknown {unknown}; choose from {list(PARTS)}")
    if args.out is not None and args.out.is_dir() and any(args.out.iterdir()):
        parser.error(
            f"--out {args.out} is not empty: an earlier check's runs there would refuse this "
            "one's; give a new folder, or leave --out out (a fresh temporary one)"
        )
    plan = _plan(args.dry_run)
    if not plan.dry_run:
        import torch

        if not torch.cuda.is_available():
            parser.error("no CUDA device here; run it on a GPU machine, or add --dry-run")
    out = args.out or Path(tempfile.mkdtemp(prefix="lmexp-gpu-check-"))
    out.mkdir(parents=True, exist_ok=True)
    # SIGTERM (a timeout's, a lent machine's): end the command in flight and its jobs, then exit
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    started = time.monotonic()
    global _deadline
    _deadline = None if args.budget_s is None else started + args.budget_s
    rows = _environment(plan)
    steps = {
        "tests": part_tests,
        "bench": part_bench,
        "pack": part_pack,
        "packed": part_packed,
        "table1": part_table1,
        "baselines": part_baselines,
    }
    for name in parts:
        t0 = time.monotonic()
        if _deadline is not None and t0 >= _deadline:
            rows.append(Row(name, "not run", f"--budget-s {args.budget_s:g} spent", "", "SKIP"))
            continue
        try:
            part = steps[name](plan, out)
        except Exception as exc:  # noqa: BLE001  (one part's failure is a row; the rest run)
            part = [Row(name, "part raised", f"{type(exc).__name__}: {exc}"[:300], "", "FAIL")]
        rows += part
        print(f"[{name} done in {time.monotonic() - t0:.0f} s]\n{table(part)}", flush=True)
        # the table so far, on disk after every part: a check cut off still leaves its rows
        (out / "gpu_check.md").write_text(table(rows) + "\n", encoding="utf-8")
    rows.append(
        Row(
            "total",
            "wall time of the check",
            f"{time.monotonic() - started:.0f} s",
            "<= 600 s" if not plan.dry_run else "",
        )
    )
    print()
    print(table(rows))
    (out / "gpu_check.md").write_text(table(rows) + "\n", encoding="utf-8")
    print(f"\nwrote {out / 'gpu_check.md'}")
    return 1 if any(r.verdict in ("FAIL", "SKIP") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
