"""Plain SGD, `p -= lr * (grad + weight_decay * p)`, without `torch.optim`.

It is IFT6135 assignment 2's update, which the course scaffold (like PyTorch's own
word_language_model example) writes by hand rather than through `torch.optim.SGD`. The reason
here is start-up: the first `torch.optim.Optimizer` a process builds imports `torch._dynamo`
(measured 1.2-1.5 s on this 2-core CPU, once per process, for nothing an SGD step uses), a tenth
of a 400-step run. The update is the same multi-tensor kernel `torch.optim.SGD` runs
(`_foreach_add_`), its state dict has `torch.optim.SGD`'s layout, so checkpoints load both ways,
and it records in a CUDA graph as it is (no host-side step counter).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor


class PlainSGD:
    """The subset of the `torch.optim.Optimizer` interface lmexp uses, for SGD without momentum."""

    def __init__(self, params: Iterable[Tensor], lr: float, weight_decay: float = 0.0) -> None:
        params = list(params)
        if not params:
            raise ValueError("PlainSGD got an empty parameter list")
        self.param_groups: list[dict[str, Any]] = [
            {"params": params, "lr": lr, "weight_decay": weight_decay, "momentum": 0.0}
        ]
        self.state: dict[Tensor, dict] = {}  # SGD without momentum keeps none

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if group["weight_decay"]:
                grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
            torch._foreach_add_(params, grads, alpha=-group["lr"])

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_().zero_()

    def state_dict(self) -> dict[str, Any]:
        """`torch.optim.SGD`'s layout: parameters by index, hyper-parameters per group."""
        groups, start = [], 0
        for group in self.param_groups:
            n = len(group["params"])
            saved = {k: v for k, v in group.items() if k != "params"}
            groups.append({**saved, "params": list(range(start, start + n))})
            start += n
        return {"state": {}, "param_groups": groups}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state["param_groups"]
        sizes = [len(g["params"]) for g in saved]
        if sizes != [len(g["params"]) for g in self.param_groups]:
            raise ValueError(
                f"optimizer state for parameter groups of sizes {sizes} does not fit this "
                f"model's {[len(g['params']) for g in self.param_groups]}"
            )
        if any(state["state"].values()) or any(g.get("momentum", 0.0) for g in saved):
            raise ValueError("this optimizer state has momentum; plain SGD keeps none")
        for group, old in zip(self.param_groups, saved, strict=True):
            group["lr"] = old["lr"]
            group["weight_decay"] = old.get("weight_decay", 0.0)
