"""Packed training's step against K jobs' steps one after another, side by side (lmexp/pack/).

    python -m benchmarks.packed --archs gru --sizes small --pack 1,2,4,8

For each K: "one after another" times K lmexp training steps (`Trainer.train_step`, the step a
job takes: the scratch cells' hand-written BPTT, the output layer fused into the loss, clip
0.25, SGD), one per member; "packed" times one `PackedStep` forward and backward of the K
members plus each member's clip and SGD step. Both see the same windows (batch 20, 35 tokens,
a 10,000-word vocabulary). Figures are training tokens per second of all K members together,
the median of `--repeats` timings of `--steps` steps after `--warmup`. This is the step alone:
a whole packed job also evaluates, checkpoints and writes its record (issue 33's launcher).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks import write_rows
from benchmarks.speed.measure import profile_ops
from benchmarks.speed.rows import BATCH, SEQ_LEN, VOCAB, config_for, windows_for
from lmexp.models import build_model
from lmexp.models.base import LanguageModel
from lmexp.pack.step import PackedStep, stack_states
from lmexp.runtime.device import device_name, synchronize
from lmexp.training.optim import OptimConfig, build_optimizer
from lmexp.training.schema import TrainerConfig
from lmexp.training.trainer import Trainer

CLIP = 0.25
SGD = OptimConfig(name="sgd", lr=1.0)


def _sequential(
    arch: str, size: str, k: int, streams: torch.Tensor, graph: bool = False
) -> Callable:
    steps = []
    device = streams.device
    for member in range(k):
        torch.manual_seed(member)
        model = build_model(config_for(arch, size, {}), VOCAB).to(device)
        # capturable: a replayed graph reads the learning rate from the device
        optimizer = build_optimizer(model.parameters(), SGD, capturable=graph)
        trainer = Trainer(
            model, optimizer, lambda epoch: 1.0, streams,
            streams[:, : SEQ_LEN + 1], SEQ_LEN,
            TrainerConfig(max_steps=1, clip_norm=CLIP, checkpoint_every=None, progress="off"),
            on_eval=lambda point: None, cuda_graph=graph,
        )  # fmt: skip
        steps.append((trainer, {"h": model.init_state(BATCH, device)}))

    def step(inputs: torch.Tensor, targets: torch.Tensor) -> None:
        for trainer, state in steps:
            state["h"] = trainer.train_step(inputs, targets, state["h"])

    return step


def _packed(arch: str, size: str, k: int, device: torch.device) -> Callable:
    models = []
    for member in range(k):
        torch.manual_seed(member)
        models.append(build_model(config_for(arch, size, {}), VOCAB).to(device))
    optimizers = [torch.optim.SGD(m.parameters(), lr=1.0) for m in models]
    packed, active = PackedStep(models), list(range(k))
    state = {"h": stack_states([m.init_state(BATCH, device) for m in models])}

    def step(inputs: torch.Tensor, targets: torch.Tensor) -> None:
        xs, ys = inputs.expand(k, -1, -1), targets.expand(k, -1, -1)
        losses, state["h"] = packed.forward(active, xs, ys, LanguageModel.detach_state(state["h"]))
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        for model, optimizer in zip(models, optimizers, strict=True):
            torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            optimizer.step()

    return step


def _tokens_per_s(step: Callable, windows: list, k: int, steps: int, warmup: int, repeats: int):
    device = windows[0][0].device
    for inputs, targets in windows[:warmup]:
        step(inputs, targets)
    rates = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        for inputs, targets in windows[:steps]:
            step(inputs, targets)
        synchronize(device)
        rates.append(k * steps * BATCH * SEQ_LEN / (time.perf_counter() - start))
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.packed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--archs", default="gru", help="comma-separated: rnn,gru,lstm,transformer")
    parser.add_argument("--sizes", default="small", help="comma-separated: small,medium,large")
    parser.add_argument("--pack", default="1,2,4,8", help="members per pack, comma-separated")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument(
        "--graph", action="store_true", help="the jobs one after another replay CUDA graphs"
    )
    parser.add_argument("--csv", type=Path, help="also write the rows here")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N",
        help="also profile N steps of each row, both ways, and print the top ops by self time",
    )  # fmt: skip
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    streams, windows = windows_for(device, max(args.steps, args.warmup))
    graph = args.graph and device.type == "cuda"
    steps = "graphed" if graph else "eager"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, "
          f"{device_name(device)}, one after another {steps}")  # fmt: skip
    print("| model | K | one after another, tok/s | packed, tok/s | packed / one after another |")
    print("| --- | --- | --- | --- | --- |")
    rows = []
    for arch in args.archs.split(","):
        for size in args.sizes.split(","):
            for k in (int(v) for v in args.pack.split(",")):
                timing = (args.steps, args.warmup, args.repeats)
                sequential = _sequential(arch, size, k, streams, graph)
                packed_step = _packed(arch, size, k, device)
                alone = _tokens_per_s(sequential, windows, k, *timing)
                packed = _tokens_per_s(packed_step, windows, k, *timing)
                print(f"| {arch} {size} | {k} | {alone:,.0f} | {packed:,.0f} | "
                      f"x{packed / alone:.2f} |", flush=True)  # fmt: skip
                if args.profile:
                    for name, step in (("one after another", sequential), ("packed", packed_step)):
                        ops = profile_ops(step, windows[: args.profile], device, top=10)
                        shown = ", ".join(f"{o['op']} {o['share']:.0%} ({o['calls']})" for o in ops)
                        print(f"  top ops, {name} (share of self time, calls a step): {shown}")
                rows.append({"arch": arch, "width": size, "jobs": k, "graph": graph,
                             "sequential_tokens_per_s": round(alone, 1),
                             "packed_tokens_per_s": round(packed, 1),
                             "vs_one": round(packed / alone, 3)})  # fmt: skip
    if args.csv is not None:
        write_rows(rows, args.csv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
