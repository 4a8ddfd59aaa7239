"""IFT6135 A2 §5.1-5.2 as the assignment defines them, pinned on tiny models by hand.

L_t with the state fresh for every window (the assignment's) and carried (evaluation's), on a
model whose loss is a closed form of how much context it has read; the gradient-flow curve
against a direct autograd computation of ‖∇_{h_t} L_T‖ from the RNN's own equations.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmexp.inspect.internals import gradient_flow, timestep_loss
from lmexp.models import build_model, model_config_from_dict
from lmexp.models.base import LanguageModel, State

V = 3  # vocabulary: the target is always token 0


class ContextCounter(LanguageModel):
    """Its logit for token 0 is the number of tokens it has read (the state counts them), the
    others' 0: with every target 0, the loss at a position with s tokens read is
    log(V - 1 + e^s) - s, whatever the tokens are."""

    def __init__(self) -> None:
        super().__init__()
        self.output = nn.Linear(1, V)  # unused: forward is defined directly

    def init_state(self, batch_size: int, device: torch.device) -> State:
        return torch.zeros(batch_size, device=device)

    def forward(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        assert isinstance(state, Tensor)
        read = state[:, None] + torch.arange(1, tokens.size(1) + 1)  # (B, T)
        logits = torch.zeros(*tokens.shape, V)
        logits[..., 0] = read
        return logits, read[:, -1]


def _loss_after(read: int) -> float:
    return math.log(V - 1 + math.exp(read)) - read


def test_timestep_loss_fresh_starts_every_window_without_context() -> None:
    # 2 streams of 12 tokens in windows of 4: 3 windows, every target 0
    data = torch.zeros(2, 13, dtype=torch.long)
    fresh = timestep_loss(ContextCounter(), data, seq_len=4)  # the default: fresh
    assert [r["t"] for r in fresh] == [0, 1, 2, 3]
    assert [r["tokens"] for r in fresh] == [6, 6, 6, 6]  # 3 windows x 2 streams
    # every window: 1, 2, 3, 4 tokens read at t = 0..3
    want = [_loss_after(t + 1) for t in range(4)]
    assert [r["loss"] for r in fresh] == pytest.approx(want, rel=1e-5)  # float32 logits
    assert fresh[0]["loss"] == pytest.approx(0.551444713932051, rel=1e-6)  # log(2 + e) - 1


def test_timestep_loss_carried_reads_the_stream_as_evaluation_does() -> None:
    data = torch.zeros(2, 13, dtype=torch.long)
    carried = timestep_loss(ContextCounter(), data, seq_len=4, state="carried")
    # window w has read 4w tokens before it: position t averages s = 1+t, 5+t, 9+t
    want = [sum(_loss_after(4 * w + t + 1) for w in range(3)) / 3 for t in range(4)]
    assert [r["loss"] for r in carried] == pytest.approx(want, rel=1e-5)
    assert carried[0]["loss"] < timestep_loss(ContextCounter(), data, 4)[0]["loss"]


def test_timestep_loss_refuses_an_unknown_state() -> None:
    with pytest.raises(ValueError, match="state='warm'; choose fresh or carried"):
        timestep_loss(ContextCounter(), torch.zeros(2, 9, dtype=torch.long), 4, state="warm")


def _tiny_rnn(dropout: float = 0.0) -> LanguageModel:
    torch.manual_seed(3)
    cfg = model_config_from_dict(
        {"name": "rnn", "emb_size": 4, "hidden_size": 3, "num_layers": 1, "dropout": dropout}
    )
    return build_model(cfg, 5)


def _assignment_norms(model: LanguageModel, inputs: Tensor, targets: Tensor) -> list[float]:
    """‖∇_{h_t} L_T‖, t = 0..T-1, from eq. (2) written out: h_{t+1} = tanh(W_x e(x_t) + b +
    W_h h_t), L_T the batch-mean cross-entropy of W_y h_T + b_y against the last target."""
    cell = model.layers[0]
    w_x, b = cell.input_weights.weight, cell.input_weights.bias
    w_h = cell.recurrent.weight
    h = torch.zeros(inputs.size(0), 3, requires_grad=True)
    states = []
    for t in range(inputs.size(1)):
        states.append(h)
        h = torch.tanh(model.embedding(inputs[:, t]) @ w_x.T + b + h @ w_h.T)
    loss = F.cross_entropy(model.output(h), targets[:, -1])  # mean over the minibatch
    return [g.norm().item() for g in torch.autograd.grad(loss, states)]


def test_gradient_flow_is_the_assignments_formula() -> None:
    model = _tiny_rnn()
    inputs = torch.tensor([[1, 2, 3, 4, 0], [4, 4, 2, 1, 3]])
    targets = torch.tensor([[2, 3, 4, 0, 1], [4, 2, 1, 3, 0]])
    rows = gradient_flow(model, inputs, targets)  # the defaults: the assignment's definition
    want = _assignment_norms(model, inputs, targets)
    assert [r["t"] for r in rows] == [0, 1, 2, 3, 4]
    assert [r["grad_norm"] for r in rows] == pytest.approx(want, rel=1e-5)
    low, high = min(want), max(want)
    assert [r["scaled"] for r in rows] == pytest.approx([(w - low) / (high - low) for w in want])
    assert min(r["scaled"] for r in rows) == 0.0 and max(r["scaled"] for r in rows) == 1.0


def test_gradient_flow_per_sequence_is_lmexps_earlier_definition() -> None:
    model = _tiny_rnn()
    inputs = torch.tensor([[1, 2, 3], [4, 4, 2]])
    targets = torch.tensor([[2, 3, 4], [4, 2, 1]])
    rows = gradient_flow(model, inputs, targets, definition="per-sequence")
    # states after each token (h_1..h_T), summed loss, per-sequence norms averaged, / max
    cell = model.layers[0]
    h, states = torch.zeros(2, 3), []
    for t in range(3):
        h = torch.tanh(
            model.embedding(inputs[:, t]) @ cell.input_weights.weight.T
            + cell.input_weights.bias
            + h @ cell.recurrent.weight.T
        )
        states.append(h)
    loss = F.cross_entropy(model.output(h), targets[:, -1], reduction="sum")
    want = [g.norm(dim=1).mean().item() for g in torch.autograd.grad(loss, states)]
    assert [r["grad_norm"] for r in rows] == pytest.approx(want, rel=1e-5)
    assert rows[-1]["scaled"] == pytest.approx(want[-1] / max(want))


def test_gradient_flow_in_train_mode_draws_dropout_from_its_own_seed() -> None:
    model = _tiny_rnn(dropout=0.5)
    inputs = torch.tensor([[1, 2, 3, 4], [4, 4, 2, 1]])
    targets = torch.tensor([[2, 3, 4, 0], [4, 2, 1, 3]])
    torch.manual_seed(11)
    before = torch.rand(1)
    torch.manual_seed(11)
    train = gradient_flow(model, inputs, targets)  # mode="train": dropout on
    assert torch.rand(1) == before  # the caller's random stream is untouched
    assert train == gradient_flow(model, inputs, targets)  # same seed, same masks
    evaluated = gradient_flow(model, inputs, targets, mode="eval")
    assert evaluated != train
    assert [r["grad_norm"] for r in evaluated] == pytest.approx(
        _assignment_norms(model.eval(), inputs, targets), rel=1e-5
    )
    assert model.training is False  # left as it was found
