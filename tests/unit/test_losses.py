"""The fused output layer + cross-entropy equals the two-step version, value and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lmexp.training.losses import linear_cross_entropy


def _inputs(dtype=torch.float32, bias=True):
    torch.manual_seed(0)
    h = torch.randn(13, 6, dtype=dtype, requires_grad=True)
    weight = torch.randn(11, 6, dtype=dtype, requires_grad=True)
    b = torch.randn(11, dtype=dtype, requires_grad=True) if bias else None
    targets = torch.randint(11, (13,))
    return h, weight, b, targets


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_linear_then_cross_entropy(reduction: str, bias: bool) -> None:
    h, weight, b, targets = _inputs(bias=bias)
    fused = linear_cross_entropy(h, weight, b, targets, reduction)
    params = [h, weight] + ([b] if bias else [])
    grads = torch.autograd.grad(fused * 3.0, params)  # a non-unit upstream gradient too
    plain = F.cross_entropy(F.linear(h, weight, b), targets, reduction=reduction)
    expected = torch.autograd.grad(plain * 3.0, params)
    torch.testing.assert_close(fused, plain)
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want)


def test_gradcheck_in_double_precision() -> None:
    h, weight, b, targets = _inputs(torch.float64)
    assert torch.autograd.gradcheck(
        lambda h, w, b: linear_cross_entropy(h, w, b, targets), (h, weight, b)
    )


def test_inference_mode_gives_the_summed_loss_without_a_graph() -> None:
    h, weight, b, targets = _inputs()
    with torch.inference_mode():
        fused = linear_cross_entropy(h, weight, b, targets, "sum")
        plain = F.cross_entropy(F.linear(h, weight, b), targets, reduction="sum")
    torch.testing.assert_close(fused, plain)
    assert not fused.requires_grad


def test_extreme_logits_stay_finite() -> None:
    """log-sum-exp, not log(softmax): a target 1000 nats below the best gives 1000, not inf."""
    h = torch.tensor([[1.0]])
    weight = torch.tensor([[1000.0], [0.0]])
    loss = linear_cross_entropy(h, weight, None, torch.tensor([1]))
    assert loss.item() == pytest.approx(1000.0)
