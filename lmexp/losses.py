"""The output layer and the cross-entropy in one autograd node: same loss, fewer passes over memory.

`F.cross_entropy(linear(h))` keeps the (N, V) logits, writes a second (N, V) log-softmax, and in
backward fills a third (N, V) buffer with zeros before turning it into the gradient. With a
10,000-word vocabulary these memory-bound passes are a fifth of a small model's step on CPU.
Here the forward computes the logits and their log-softmax once, takes the loss from it, and -
when a gradient is wanted - turns that buffer in place into d loss / d logits = softmax - onehot,
which is all that backward needs. The loss and gradients are those of the two-step version.
"""

from __future__ import annotations

import torch
from torch import Tensor


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx,
        h: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        targets: Tensor,
        mean: bool,
        want_grad: bool,
    ):
        logits = h @ weight.t() if bias is None else torch.addmm(bias, h, weight.t())  # (N, V)
        log_probs = torch.log_softmax(logits, dim=1)  # (N, V)
        del logits  # the largest buffer: freed before the gradient buffer exists
        loss = -log_probs.gather(1, targets.unsqueeze(1)).sum()
        scale = 1.0 / targets.numel() if mean else 1.0
        if want_grad:  # not under no_grad / inference_mode, where parameters still require grad
            grad_logits = log_probs.exp_()  # softmax, in place: (N, V)
            rows = torch.arange(targets.numel(), device=targets.device)
            grad_logits[rows, targets] -= 1.0  # d (summed loss) / d logits
            ctx.save_for_backward(h, weight, grad_logits)
            ctx.has_bias, ctx.scale = bias is not None, scale
        return loss * scale

    @staticmethod
    def backward(ctx, grad_loss: Tensor):
        h, weight, grad_logits = ctx.saved_tensors
        # The mean's 1/N and grad_loss (1 for loss.backward()) scale the small operands and
        # results, never the (N, V) buffer or the (V, H) gradient: no extra pass over either,
        # and no host sync to test grad_loss for 1.
        scale = grad_loss * ctx.scale
        grad_h = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_h = (grad_logits @ weight) * scale  # (N, H)
        if ctx.needs_input_grad[1]:
            grad_w = grad_logits.t() @ (h * scale)  # (V, H); scaling h, the smaller operand
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_logits.sum(0) * scale  # (V,)
        return grad_h, grad_w, grad_b, None, None, None


def linear_cross_entropy(
    h: Tensor, weight: Tensor, bias: Tensor | None, targets: Tensor, reduction: str = "mean"
) -> Tensor:
    """`F.cross_entropy(F.linear(h, weight, bias), targets, reduction=...)`, fused.

    Args:
        h: (N, H) features; weight: (V, H); bias: (V,) or None; targets: (N,) class ids.
        reduction: "mean" (training) or "sum" (evaluation).
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction={reduction!r}; choose mean or sum")
    want_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (h, weight, bias)
    )
    return _LinearCrossEntropy.apply(h, weight, bias, targets, reduction == "mean", want_grad)
