"""The learning-rate schedules and that plain SGD is exactly p -= lr * grad."""

from __future__ import annotations

import pytest
import torch

from lmexp.training.optim import OptimConfig, build_optimizer
from lmexp.training.schedules import ScheduleConfig, lr_at_epoch


def test_sgd_schedule_divides_by_decay_after_each_epoch() -> None:
    cfg = ScheduleConfig(name="decay", decay=1.15)
    assert lr_at_epoch(cfg, 10.0, 0) == 10.0
    assert lr_at_epoch(cfg, 10.0, 1) == pytest.approx(10.0 / 1.15)
    assert lr_at_epoch(cfg, 10.0, 5) == pytest.approx(10.0 / 1.15**5)


def test_sgd_schedule_flat_epochs() -> None:
    cfg = ScheduleConfig(name="decay", decay=2.0, flat_epochs=3)
    assert [lr_at_epoch(cfg, 1.0, e) for e in range(6)] == [1.0, 1.0, 1.0, 1.0, 0.5, 0.25]


def test_plateau_divides_after_each_epoch_that_did_not_beat_the_best_before_it() -> None:
    """pytorch/examples' word LM: `if val_loss < best: best = val_loss else: lr /= 4.0`."""
    cfg = ScheduleConfig(name="plateau", decay=4.0)
    ends = [300.0, 200.0, 210.0, 190.0, 195.0, 195.0]  # misses after epochs 2, 4, 5 (0-based)
    rates = [lr_at_epoch(cfg, 20.0, e, ends) for e in range(7)]
    assert rates == [20.0, 20.0, 20.0, 5.0, 5.0, 1.25, 0.3125]
    assert lr_at_epoch(cfg, 20.0, 3, ends[:2]) == 20.0  # only the epochs measured so far count


def test_compounding_schedule_matches_the_course_scaffold() -> None:
    # The scaffold: at the start of each epoch, lr *= (1/1.15) ** max(epoch - 14, 0).
    cfg = ScheduleConfig(name="decay", decay=1.15, flat_epochs=14, compounding=True)
    lr = 20.0
    for epoch in range(40):
        lr = lr * (1 / 1.15) ** max(epoch - 14, 0)
        assert lr_at_epoch(cfg, 20.0, epoch) == pytest.approx(lr, rel=1e-9)


def test_the_constant_schedule_keeps_the_rate() -> None:
    cfg = ScheduleConfig(name="constant")
    assert lr_at_epoch(cfg, 0.5, 0) == lr_at_epoch(cfg, 0.5, 30) == 0.5


@pytest.mark.parametrize(
    ("overrides", "schedule"),
    [
        (["optim=sgd"], "constant"),
        (["optim=adam"], "constant"),
        (["optim=sgd_schedule"], "decay"),  # the assignment's name for SGD + decay
        (["optim=adam", "schedule=decay"], "decay"),  # any optimizer takes any schedule
    ],
)
def test_any_optimizer_takes_any_schedule(compose, overrides, schedule) -> None:
    from lmexp.config import to_train_config

    assert to_train_config(compose(overrides)).schedule.name == schedule


def test_plain_sgd_step_is_p_minus_lr_grad() -> None:
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = build_optimizer([p], OptimConfig(name="sgd", lr=0.1))
    p.grad = torch.tensor([0.5, 4.0])
    opt.step()
    assert p.detach().tolist() == pytest.approx([1.0 - 0.05, -2.0 - 0.4])


def test_unknown_optimizer_lists_choices() -> None:
    cfg = OptimConfig(name="sgd", lr=1.0)
    cfg.name = "lbfgs"
    with pytest.raises(ValueError, match="choose from"):
        build_optimizer([torch.nn.Parameter(torch.zeros(1))], cfg)


def test_adam_step_is_the_textbook_update_by_hand() -> None:
    # Step 1 of Adam: m = (1-b1) g, v = (1-b2) g^2, bias-corrected m^ = g, v^ = g^2,
    # so p -= lr * g / (|g| + eps) = lr * sign(g) (up to eps); step 2 by hand from there.
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = build_optimizer([p], OptimConfig(name="adam", lr=0.1, betas=(0.9, 0.999), eps=1e-8))
    assert opt.param_groups[0]["fused"]  # the fused kernel on CPU
    p.grad = torch.tensor([0.5, -4.0])
    opt.step()
    assert p.detach().tolist() == pytest.approx([0.9, -1.9], abs=1e-6)
    p.grad = torch.tensor([1.0, 2.0])
    opt.step()
    expected = []
    for g1, g2, start in ((0.5, 1.0, 0.9), (-4.0, 2.0, -1.9)):
        m = (0.9 * 0.1 * g1 + 0.1 * g2) / (1 - 0.9**2)
        v = (0.999 * 0.001 * g1**2 + 0.001 * g2**2) / (1 - 0.999**2)
        expected.append(start - 0.1 * m / (v**0.5 + 1e-8))
    assert p.detach().tolist() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_weight_decay_is_l2_added_to_the_gradient(name: str) -> None:
    # grad = 0.5 from the loss, + 0.1 * p = 0.2 from L2: 0.7 in all
    p = torch.nn.Parameter(torch.tensor([2.0]))
    optimizer = build_optimizer([p], OptimConfig(name=name, lr=0.1, weight_decay=0.1))
    (0.5 * p).sum().backward()
    optimizer.step()
    if name == "sgd":
        assert p.item() == pytest.approx(2.0 - 0.1 * 0.7)
    else:  # Adam's first step moves by lr * sign(grad) whatever its size: the L2 term did
        assert p.item() == pytest.approx(2.0 - 0.1, rel=1e-6)
        assert optimizer.state[p]["exp_avg"].item() == pytest.approx(0.1 * 0.7)


def test_plain_sgd_matches_torch_sgd_and_loads_its_state() -> None:
    # the same updates as torch.optim.SGD (with L2) over a few steps, and state dicts that
    # load both ways (checkpoints written before lmexp had its own SGD)
    torch.manual_seed(0)
    ours = [torch.nn.Parameter(torch.randn(3, 2)), torch.nn.Parameter(torch.randn(4))]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    a = build_optimizer(ours, OptimConfig(name="sgd", lr=0.3, weight_decay=0.01))
    b = torch.optim.SGD(theirs, lr=0.3, weight_decay=0.01)
    for _ in range(3):
        for params, opt in ((ours, a), (theirs, b)):
            opt.zero_grad(set_to_none=True)
            sum((p**2).sum() for p in params).backward()
            opt.step()
    for p, q in zip(ours, theirs, strict=True):
        torch.testing.assert_close(p, q)
    b.param_groups[0]["lr"] = 0.05
    a.load_state_dict(b.state_dict())
    assert a.param_groups[0]["lr"] == 0.05
    b.load_state_dict(a.state_dict())
    assert b.param_groups[0]["lr"] == 0.05 and b.param_groups[0]["weight_decay"] == 0.01


def test_plain_sgd_refuses_state_that_does_not_fit() -> None:
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(1))], OptimConfig(name="sgd", lr=1.0))
    other = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1)) for _ in range(2)], lr=1.0)
    with pytest.raises(ValueError, match="does not fit"):
        opt.load_state_dict(other.state_dict())
    momentum = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0, momentum=0.9)
    with pytest.raises(ValueError, match="momentum"):
        opt.load_state_dict(momentum.state_dict())


def test_a_plain_sgd_run_never_imports_torch_dynamo() -> None:
    # the point of PlainSGD: torch.optim's first optimizer imports torch._dynamo (over a second)
    import subprocess
    import sys

    code = (
        "import sys, torch\n"
        "from lmexp.training.optim import OptimConfig, build_optimizer\n"
        "p = torch.nn.Parameter(torch.ones(2))\n"
        "o = build_optimizer([p], OptimConfig(name='sgd', lr=0.1))\n"
        "p.sum().backward(); o.step(); o.zero_grad(); o.state_dict()\n"
        "torch.nn.utils.clip_grad_norm_([p], 1.0)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
