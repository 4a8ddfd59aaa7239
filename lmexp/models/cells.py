"""One recurrent layer per class (Elman RNN, GRU, LSTM), written from tensor ops, split for speed.

Each cell owns its equations and initialisation, not the time loop or the stacking (recurrent.py).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn

from lmexp.models import bptt

CellState = Tensor | tuple[Tensor, Tensor]


class RecurrentCell(nn.Module, ABC):
    """Shared layout: one fused input projection for all gates, recurrent matrices without bias.

    A gate's pre-activation is W x_t + U h_{t-1} + b. The W x_t + b half does not depend on the
    recurrence, so `input_projection` computes it for the whole window in one large matmul, and
    the Python time loop only pays for the small U h_{t-1} matmul. The single bias b of each gate
    lives on the input projection, so the recurrent matmuls have none: one b per gate, as written.
    """

    num_gates: int  # gate blocks in the input projection, each hidden_size wide

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.input_weights = nn.Linear(input_size, self.num_gates * hidden_size)

    def reset_parameters(self) -> None:
        """Every weight and bias uniform in ±1/√hidden_size, as the assignment's scaffold does."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for param in self.parameters():
            nn.init.uniform_(param, -bound, bound)

    def input_projection(self, x: Tensor) -> Tensor:
        """W x_t + b for every gate and every time step at once: (B, T, in) -> (B, T, G*H)."""
        return self.input_weights(x)  # (B, T, G*H)

    @staticmethod
    def output(state: CellState) -> Tensor:
        """The part of the state the next layer and the output layer see: h_t, (B, H)."""
        assert isinstance(state, Tensor)
        return state

    @abstractmethod
    def step(self, xproj_t: Tensor, state: CellState) -> CellState:
        """Advance one time step from the precomputed projection xproj_t (B, G*H)."""

    @abstractmethod
    def layer(self, xproj: Tensor, state: CellState) -> tuple[Tensor, CellState]:
        """The whole window at once, as one autograd node with hand-written BPTT (bptt.py):
        xproj (B, T, G*H) -> outputs h_1..h_T (B, T, H) and the final state. Same function
        and gradients as `step` in a loop, in fewer ops."""

    @staticmethod
    def _cast(dtype: torch.dtype, *tensors: Tensor) -> list[Tensor]:
        """Everything a node reads in one dtype (autocast's, under bf16); no-op in fp32."""
        return [t.to(dtype) for t in tensors]


class RNNCell(RecurrentCell):
    """Elman layer, IFT6135 A2 eq. (2): h_t = σ(W_x x_t + W_h h_{t-1} + b_h), σ = tanh or relu."""

    num_gates = 1

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh") -> None:
        super().__init__(input_size, hidden_size)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity={nonlinearity!r}; choose tanh or relu")
        self.nonlinearity = nonlinearity
        self.activation = torch.tanh if nonlinearity == "tanh" else torch.relu
        self.recurrent = nn.Linear(hidden_size, hidden_size, bias=False)  # W_h
        self.reset_parameters()

    def step(self, xproj_t: Tensor, state: CellState) -> Tensor:
        """One matmul-add (addmm adds W_h h to the precomputed W_x x + b), then σ."""
        assert isinstance(state, Tensor)
        return self.activation(torch.addmm(xproj_t, state, self.recurrent.weight.t()))  # (B, H)

    def layer(self, xproj: Tensor, state: CellState) -> tuple[Tensor, Tensor]:
        assert isinstance(state, Tensor)
        args = self._cast(bptt.compute_dtype(xproj), xproj, state, self.recurrent.weight)
        out = bptt.ElmanLayer.apply(*args, self.nonlinearity == "relu")  # (B, T, H)
        return out, out[:, -1]


class GRUCell(RecurrentCell):
    """GRU layer exactly as IFT6135 A2's eqs. (5)-(8): the reset gate scales h_{t-1} before U_h.

    (PyTorch's nn.GRU applies r after the matmul, r ⊙ (U_h h + b); the two are different models.)
    Input-projection gate order: [r, z, h~].
    """

    num_gates = 3

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.recurrent_gates = nn.Linear(hidden_size, 2 * hidden_size, bias=False)  # [U_r; U_z]
        self.recurrent_candidate = nn.Linear(hidden_size, hidden_size, bias=False)  # U_h
        self.reset_parameters()

    def step(self, xproj_t: Tensor, state: CellState) -> Tensor:
        """U_r, U_z share one matmul; U_h needs r_t first, so it is a second one on r ⊙ h_{t-1}."""
        assert isinstance(state, Tensor)
        split = 2 * self.hidden_size
        gates = torch.addmm(xproj_t[:, :split], state, self.recurrent_gates.weight.t())  # (B, 2H)
        reset, update = torch.sigmoid(gates).chunk(2, dim=1)  # r_t, z_t: (B, H) each
        candidate = torch.tanh(
            torch.addmm(xproj_t[:, split:], reset * state, self.recurrent_candidate.weight.t())
        )  # h~_t: (B, H)
        return torch.lerp(state, candidate, update)  # (1 - z) ⊙ h_{t-1} + z ⊙ h~_t: (B, H)

    def layer(self, xproj: Tensor, state: CellState) -> tuple[Tensor, Tensor]:
        assert isinstance(state, Tensor)
        weights = (self.recurrent_gates.weight, self.recurrent_candidate.weight)
        out = bptt.GRULayer.apply(*self._cast(bptt.compute_dtype(xproj), xproj, state, *weights))
        return out, out[:, -1]  # (B, T, H), (B, H)


class GRUResetAfterCell(RecurrentCell):
    """GRU with the reset gate applied *after* the recurrent matmul, as cuDNN and nn.GRU do:

    h~_t = tanh(W_h x_t + b_h + r_t ⊙ (U_h h_{t-1} + b_hh)); r_t, z_t and eq. (8) as the assignment.
    Not IFT6135 A2's eq. (7) (r ⊙ h_{t-1} inside U_h): a different model, offered so the scratch
    loop can be checked against `nn.GRU` and so both runs use the same function. Since r no
    longer feeds the matmul, all three recurrent blocks [U_r; U_z; U_h] are one matmul per step.
    The candidate keeps a recurrent bias b_hh of its own, because r scales it.
    """

    num_gates = 3

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.recurrent = nn.Linear(hidden_size, 3 * hidden_size, bias=False)  # [U_r; U_z; U_h]
        self.candidate_bias = nn.Parameter(torch.empty(hidden_size))  # b_hh, inside r ⊙ (...)
        self.reset_parameters()

    def step(self, xproj_t: Tensor, state: CellState) -> Tensor:
        """One recurrent matmul for all gates, then the elementwise update."""
        assert isinstance(state, Tensor)
        split = 2 * self.hidden_size
        recurrent = torch.mm(state, self.recurrent.weight.t())  # (B, 3H)
        reset, update = torch.sigmoid(xproj_t[:, :split] + recurrent[:, :split]).chunk(2, dim=1)
        candidate = torch.tanh(
            torch.addcmul(xproj_t[:, split:], reset, recurrent[:, split:] + self.candidate_bias)
        )  # h~_t: (B, H)
        return torch.lerp(state, candidate, update)  # (1 - z) ⊙ h_{t-1} + z ⊙ h~_t: (B, H)

    def layer(self, xproj: Tensor, state: CellState) -> tuple[Tensor, Tensor]:
        assert isinstance(state, Tensor)
        args = (xproj, state, self.recurrent.weight, self.candidate_bias)
        out = bptt.GRUResetAfterLayer.apply(*self._cast(bptt.compute_dtype(xproj), *args))
        return out, out[:, -1]  # (B, T, H), (B, H)


class LSTMCell(RecurrentCell):
    """Standard LSTM layer: c_t = f ⊙ c_{t-1} + i ⊙ g, h_t = o ⊙ tanh(c_t).

    Input-projection gate order: [i, f, o, g], so the three sigmoid gates are one contiguous slice.
    """

    num_gates = 4

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.recurrent = nn.Linear(hidden_size, 4 * hidden_size, bias=False)  # [U_i; U_f; U_o; U_g]
        self.reset_parameters()

    @staticmethod
    def output(state: CellState) -> Tensor:
        """h_t; the cell state c_t stays inside the layer."""
        return state[0]

    def step(self, xproj_t: Tensor, state: CellState) -> tuple[Tensor, Tensor]:
        """All four gates in one recurrent matmul, then the elementwise cell update."""
        hidden, cell = state
        split = 3 * self.hidden_size
        gates = torch.addmm(xproj_t, hidden, self.recurrent.weight.t())  # (B, 4H)
        input_gate, forget_gate, output_gate = torch.sigmoid(gates[:, :split]).chunk(3, dim=1)
        candidate = torch.tanh(gates[:, split:])  # g_t: (B, H)
        cell = torch.addcmul(forget_gate * cell, input_gate, candidate)  # c_t: (B, H)
        hidden = output_gate * torch.tanh(cell)  # h_t: (B, H)
        return hidden, cell

    def layer(self, xproj: Tensor, state: CellState) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        hidden, cell = state
        args = (xproj, hidden, cell, self.recurrent.weight)
        out, cells = bptt.LSTMLayer.apply(*self._cast(bptt.compute_dtype(xproj), *args))
        return out, (out[:, -1], cells[:, -1])  # (B, T, H); (h_T, c_T), (B, H) each
