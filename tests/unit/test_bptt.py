"""The hand-written BPTT nodes (bptt.py) against numerical derivatives and against autograd.

gradcheck (float64) checks each node's backward against finite differences of its own forward;
the comparison with the stepwise loop (cells' `step` under autograd) checks that the forward is
the assignment's equations and that a whole model trains the same on either path.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

from lmexp.models import build_model, model_config
from lmexp.models.cells import GRUCell, GRUResetAfterCell, LSTMCell, RecurrentCell, RNNCell
from lmexp.models.recurrent import run_layer

BATCH, STEPS, INPUT, HIDDEN = 3, 5, 4, 6

CELLS = {
    "rnn_tanh": lambda: RNNCell(INPUT, HIDDEN, "tanh"),
    "rnn_relu": lambda: RNNCell(INPUT, HIDDEN, "relu"),
    "gru": lambda: GRUCell(INPUT, HIDDEN),
    "gru_reset_after": lambda: GRUResetAfterCell(INPUT, HIDDEN),
    "lstm": lambda: LSTMCell(INPUT, HIDDEN),
}


def _cell(case: str, dtype: torch.dtype = torch.float32) -> RecurrentCell:
    torch.manual_seed(0)
    return CELLS[case]().to(dtype)


def _state(cell: RecurrentCell, dtype: torch.dtype, requires_grad: bool = False):
    def draw() -> torch.Tensor:
        return torch.randn(BATCH, HIDDEN, dtype=dtype, requires_grad=requires_grad)

    return (draw(), draw()) if isinstance(cell, LSTMCell) else draw()


def _flat_state(state) -> tuple[torch.Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


@pytest.mark.parametrize("case", sorted(CELLS))
def test_node_gradients_match_finite_differences(case: str) -> None:
    cell = _cell(case, torch.float64)
    if case == "rnn_relu":  # keep pre-activations away from relu's kink, where FD is undefined
        with torch.no_grad():
            cell.input_weights.bias.fill_(0.5)
    torch.manual_seed(1)
    inputs = torch.randn(BATCH, STEPS, INPUT, dtype=torch.float64, requires_grad=True)
    state = _state(cell, torch.float64, requires_grad=True)

    def layer(x, *flat_state_and_params):
        s = flat_state_and_params[: len(_flat_state(state))]
        out, final = run_layer(cell, x, s if len(s) > 1 else s[0])
        return (out, *_flat_state(final))

    assert gradcheck(layer, (inputs, *_flat_state(state), *cell.parameters()), atol=1e-6)


@pytest.mark.parametrize("case", sorted(CELLS))
def test_node_matches_the_stepwise_loop(case: str) -> None:
    cell = _cell(case)
    torch.manual_seed(1)
    inputs = torch.randn(BATCH, STEPS, INPUT, requires_grad=True)
    state = _state(cell, torch.float32, requires_grad=True)
    results = []
    for stepwise in (False, True):
        cell.zero_grad()
        inputs.grad = None
        for s in _flat_state(state):
            s.grad = None
        out, final = run_layer(cell, inputs, state, stepwise=stepwise)
        # Weight every output and the final state, so each gradient path is exercised.
        loss = (out * torch.linspace(-1, 1, HIDDEN)).sum() + sum(
            f.square().sum() for f in _flat_state(final)
        )
        loss.backward()
        grads = [inputs.grad, *(s.grad for s in _flat_state(state))]
        grads += [p.grad for p in cell.parameters()]
        results.append((out.detach(), [f.detach() for f in _flat_state(final)], grads))
    (out_a, final_a, grads_a), (out_b, final_b, grads_b) = results
    torch.testing.assert_close(out_a, out_b, atol=1e-6, rtol=1e-5)
    for a, b in zip(final_a + grads_a, final_b + grads_b, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ["rnn", "gru", "lstm"])
def test_a_model_trains_identically_on_both_paths(name: str) -> None:
    """Three SGD steps with dropout on either path: same RNG draws, same weights after."""
    cfg = model_config(name=name, emb_size=8, hidden_size=8, num_layers=2, dropout=0.2)
    weights = []
    for stepwise in (False, True):
        torch.manual_seed(0)
        model = build_model(cfg, 30)
        model.stepwise = stepwise
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        state = model.init_state(4, torch.device("cpu"))
        for _ in range(3):
            tokens = torch.randint(0, 30, (4, 7))
            logits, state = model(tokens, state)
            state = model.detach_state(state)
            loss = F.cross_entropy(logits.flatten(0, 1), tokens.roll(-1, 1).flatten())
            opt.zero_grad()
            loss.backward()
            opt.step()
        weights.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*weights, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_a_detached_state_between_steps_stops_gradient_only_on_the_stepwise_path() -> None:
    """The node's intermediate states are not graph nodes; the stepwise loop's are (used for
    gradient flow through time): grad of h_T w.r.t. the output h_1 flows only there."""
    cell = _cell("gru")
    inputs = torch.randn(BATCH, STEPS, INPUT)
    out, _ = run_layer(cell, inputs, _state(cell, torch.float32), stepwise=True)
    (grad,) = torch.autograd.grad(out[:, -1].sum(), out, retain_graph=True)
    assert grad[:, :-1].abs().sum() == 0  # the direct gradient only lands on the last slot
