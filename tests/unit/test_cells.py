"""One step of each recurrent cell against values worked out by hand from tiny explicit weights."""

from __future__ import annotations

import math

import pytest
import torch

from lmexp.models.cells import GRUCell, LSTMCell, RecurrentCell, RNNCell

X = [1.0, 2.0]  # x_t
H = [0.5, -1.0]  # h_{t-1}


def sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def set_weights(module: torch.nn.Module, **values: list) -> None:
    """Overwrite named parameters with explicit numbers."""
    params = dict(module.named_parameters())
    with torch.no_grad():
        for name, value in values.items():
            params[name.replace("__", ".")].copy_(torch.tensor(value))


def one_step(cell: RecurrentCell, state: torch.Tensor | tuple) -> torch.Tensor | tuple:
    xproj = cell.input_projection(torch.tensor([[X]]))[:, 0]  # (1, G*H)
    return cell.step(xproj, state)


def test_rnn_tanh_step() -> None:
    cell = RNNCell(2, 2, "tanh")
    set_weights(
        cell,
        input_weights__weight=[[0.5, -0.25], [0.1, 0.2]],  # W_x
        input_weights__bias=[0.1, -0.3],  # b_h
        recurrent__weight=[[0.3, 0.0], [-0.2, 0.4]],  # W_h
    )
    h = one_step(cell, torch.tensor([H]))
    # unit 0: 0.5*1 - 0.25*2 + 0.1 + 0.3*0.5 = 0.25 ; unit 1: 0.1 + 0.4 - 0.3 - 0.1 - 0.4 = -0.3
    expected = torch.tensor([[math.tanh(0.25), math.tanh(-0.3)]])
    torch.testing.assert_close(h, expected, atol=1e-6, rtol=0)


def test_rnn_relu_step() -> None:
    cell = RNNCell(2, 2, "relu")
    set_weights(
        cell,
        input_weights__weight=[[0.5, -0.25], [0.1, 0.2]],
        input_weights__bias=[0.1, -0.3],
        recurrent__weight=[[0.3, 0.0], [-0.2, 0.4]],
    )
    h = one_step(cell, torch.tensor([H]))
    torch.testing.assert_close(h, torch.tensor([[0.25, 0.0]]), atol=1e-6, rtol=0)


def test_rnn_rejects_unknown_nonlinearity() -> None:
    with pytest.raises(ValueError, match="tanh or relu"):
        RNNCell(2, 2, "sigmoid")


def test_gru_step_resets_before_the_recurrent_matmul() -> None:
    cell = GRUCell(2, 2)
    set_weights(
        cell,
        input_weights__weight=[[0.1, 0.2], [0.0, -0.1]]  # W_r
        + [[0.3, 0.0], [0.0, 0.0]]  # W_z
        + [[0.5, 0.0], [0.0, 0.25]],  # W_h
        input_weights__bias=[0.0, 0.1, -0.1, 0.2, 0.0, 0.0],  # b_r, b_z, b_h
        recurrent_gates__weight=[[0.2, 0.0], [0.0, 0.4], [0.0, 0.2], [0.2, 0.0]],  # U_r, U_z
        recurrent_candidate__weight=[[1.0, 1.0], [0.0, -1.0]],  # U_h
    )
    h = one_step(cell, torch.tensor([H]))
    r0, r1 = sig(0.1 + 0.4 + 0.2 * 0.5), sig(-0.2 + 0.1 + 0.4 * -1.0)  # sig(0.6), sig(-0.5)
    z0, z1 = sig(0.3 - 0.1 + 0.2 * -1.0), sig(0.2 + 0.2 * 0.5)  # sig(0.0), sig(0.3)
    # eq. (7): U_h (r ⊙ h) with r ⊙ h = [0.5 r0, -r1]; W_h x = [0.5, 0.5]
    c0, c1 = math.tanh(0.5 + 0.5 * r0 - r1), math.tanh(0.5 + r1)
    expected = [(1 - z0) * 0.5 + z0 * c0, (1 - z1) * -1.0 + z1 * c1]  # eq. (8)
    torch.testing.assert_close(h, torch.tensor([expected]), atol=1e-6, rtol=0)
    # nn.GRU's reset-after form, r ⊙ (U_h h) with U_h h = [-0.5, 1.0], gives another answer.
    a0, a1 = math.tanh(0.5 - 0.5 * r0), math.tanh(0.5 + r1)
    reset_after = [(1 - z0) * 0.5 + z0 * a0, (1 - z1) * -1.0 + z1 * a1]
    assert abs(h[0, 0].item() - reset_after[0]) > 1e-2


def test_lstm_step() -> None:
    cell = LSTMCell(2, 2)
    set_weights(
        cell,
        input_weights__weight=[[0.1, 0], [0, 0.1]]  # W_i
        + [[0, 0], [0, 0]]  # W_f
        + [[0, 0.5], [0.5, 0]]  # W_o
        + [[1, -1], [0, 0]],  # W_g
        input_weights__bias=[0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.1, 0.0],
        recurrent__weight=[[0, 0], [0, 0]]  # U_i
        + [[1, 0], [0, 1]]  # U_f
        + [[0, 0], [0, 0]]  # U_o
        + [[0, 0], [0, 2]],  # U_g
    )
    hidden, cell_state = one_step(cell, (torch.tensor([H]), torch.tensor([[0.2, -0.3]])))
    i0, i1 = sig(0.1), sig(0.2)
    f0, f1 = sig(0.5 + 0.5), sig(0.5 - 1.0)
    o0, o1 = sig(1.0), sig(0.5)
    g0, g1 = math.tanh(1.0 - 2.0 + 0.1), math.tanh(2.0 * -1.0)
    c0, c1 = f0 * 0.2 + i0 * g0, f1 * -0.3 + i1 * g1
    torch.testing.assert_close(cell_state, torch.tensor([[c0, c1]]), atol=1e-6, rtol=0)
    expected_h = torch.tensor([[o0 * math.tanh(c0), o1 * math.tanh(c1)]])
    torch.testing.assert_close(hidden, expected_h, atol=1e-6, rtol=0)


@pytest.mark.parametrize("cell_type", [RNNCell, GRUCell, LSTMCell])
def test_cell_init_range(cell_type: type[RecurrentCell]) -> None:
    cell = cell_type(3, 16)
    for name, param in cell.named_parameters():
        assert param.abs().max() <= 1 / math.sqrt(16), name


@pytest.mark.parametrize("cell_type", [RNNCell, GRUCell, LSTMCell])
def test_recurrent_matmuls_have_no_bias(cell_type: type[RecurrentCell]) -> None:
    biases = [name for name, _ in cell_type(3, 4).named_parameters() if name.endswith("bias")]
    assert biases == ["input_weights.bias"]
