"""The optimizers lmexp can build, the one list of them, and the `optim` group's schema.

Each optimizer is registered like an architecture (lmexp/models/registry.py): its name, how to
build it, and how tables and figures show it (a label, and an order key that also picks its
line style). The job records both in its summary.json, so the analysis names no optimizer. A
new optimizer is a `register(...)` here, its conf/optim/<name>.yaml and its test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from omegaconf import MISSING

from lmexp.registry import Registry
from lmexp.training.sgd import PlainSGD
from lmexp.validation import require_choice, require_finite, require_positive

Params = Iterable[torch.nn.Parameter]
Optimizer = torch.optim.Optimizer | PlainSGD


@dataclass
class OptimConfig:
    """The optimizer and its initial learning rate (the schedule is `ScheduleConfig`)."""

    name: str = MISSING  # one of OPTIMIZERS
    lr: float = MISSING
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # adam
    eps: float = 1e-8  # adam
    weight_decay: float = 0.0  # L2: weight_decay * p is added to each gradient (LING 574 HW7)

    def __post_init__(self) -> None:
        if MISSING in (self.name, self.lr):  # the bare schema, before an optim/ option is merged
            return
        require_choice("optim.name", self.name, names())
        require_finite("optim", lr=self.lr, eps=self.eps, weight_decay=self.weight_decay)
        require_positive("optim", lr=self.lr, eps=self.eps)
        if self.weight_decay < 0:
            raise ValueError(f"optim.weight_decay={self.weight_decay} must be >= 0")
        betas = list(self.betas)
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(
                f"optim.betas={betas} must be two numbers in [0, 1), e.g. optim.betas=[0.9,0.999]"
            )


@dataclass(frozen=True)
class OptimizerSpec:
    """One `optim=<name>` option: how to build it, how tables and figures show it."""

    name: str
    label: str  # display name, e.g. "Adam"
    # Where it sits in tables and figures (lower first), and so its line style: explicit and
    # never reused, so a new optimizer takes the next free number and moves no other.
    order: int
    build: Callable[[Params, OptimConfig, bool], Optimizer]
    note: str | None = None  # what the label stands for, in a table's caption


OPTIMIZERS: Registry[OptimizerSpec] = Registry("optimizer")
register = OPTIMIZERS.register
names = OPTIMIZERS.names


def display(name: str) -> dict[str, Any]:
    """What the analysis shows of an optimizer; the job records it in its summary.json."""
    spec = OPTIMIZERS[name]
    shown = {"optim_label": spec.label, "optim_rank": spec.order}
    return {**shown, "optim_note": spec.note} if spec.note else shown


def _sgd(params: Params, cfg: OptimConfig, capturable: bool) -> PlainSGD:
    # No momentum, no dampening: exactly the assignment's `p -= lr * grad` (plus optional L2),
    # without torch.optim's one-off import of torch._dynamo (sgd.py); capturable as it is.
    return PlainSGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _adam(params: Params, cfg: OptimConfig, capturable: bool) -> torch.optim.Optimizer:
    # The fused kernel: the same update in one pass over each tensor instead of a dozen; on a
    # 2-core CPU, 2.2 ms against 10.4 ms per step for a 4.6M-parameter model (PyTorch has it
    # for CPU and CUDA tensors; elsewhere the default implementation runs).
    params = list(params)
    fused = all(p.device.type in ("cpu", "cuda") for p in params) or None
    beta1, beta2 = cfg.betas
    return torch.optim.Adam(
        params,
        lr=cfg.lr,
        betas=(beta1, beta2),
        eps=cfg.eps,
        weight_decay=cfg.weight_decay,
        fused=fused,
        capturable=capturable,  # the step counter lives on the device, so a CUDA graph can hold it
    )


register(OptimizerSpec("sgd", "SGD", 0, _sgd))
# IFT6135 assignment 2's name and label for SGD with schedule=decay (conf/optim/sgd_schedule.yaml)
register(OptimizerSpec("sgd_schedule", "SGD-LR-SC", 1, _sgd, "SGD with a learning-rate schedule"))
register(OptimizerSpec("adam", "Adam", 2, _adam))


def build_optimizer(params: Params, cfg: OptimConfig, capturable: bool = False) -> Optimizer:
    """The optimizer named by `cfg.name`, over `params`.

    `capturable`: its step may be recorded in a CUDA graph (lmexp/training/graph.py); CUDA only.
    """
    if cfg.name not in OPTIMIZERS:
        raise ValueError(f"unknown optim {cfg.name!r}; choose from {list(names())}")
    return OPTIMIZERS[cfg.name].build(params, cfg, capturable)
