"""Hand-written backpropagation through time for the scratch layers: same equations, fewer ops.

Autograd through cells.py's step loop records every per-step op and replays each one backward,
including a small weight-gradient matmul per step. Here a whole layer over a window is one
autograd node. Its forward runs the same equations step by step and keeps the gate activations.
Its backward walks time in reverse, paying per step only for what the recurrence forces: the
gradient to h_{t-1} (one recurrent matmul, two for the assignment's GRU) and a few elementwise ops.
Everything that does not feed the recurrence (the activation derivatives, the recurrent
weight gradient as one (G*H x T*B) @ (T*B x H) matmul, the bias gradient) is computed for all
steps at once outside the loop.

Layouts: `xproj` (B, T, G*H) as `RecurrentCell.input_projection` returns it; states (B, H);
outputs (B, T, H), copied out of a time-major (T, B, H) buffer in which each step writes
contiguous rows (batch-first and contiguous as the stepwise path's, so dropout draws the same mask).
Under autocast (bf16), inputs are cast to the autocast dtype before the node and the node runs
with autocast off, so every op inside sees one dtype; the casts' backward returns fp32 gradients.
`tests/unit/test_bptt.py` holds each node to float64 gradcheck and to autograd through the loop.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd import Function


def compute_dtype(reference: Tensor) -> torch.dtype:
    """The dtype the recurrence runs in: autocast's where autocast is on, else the input's."""
    device_type = reference.device.type
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return reference.dtype


def _previous(h0: Tensor, out: Tensor) -> Tensor:
    """h_{t-1} for every t: (T, B, H) from h_0 (B, H) and the outputs h_1..h_T (T, B, H)."""
    return torch.cat([h0.unsqueeze(0), out[:-1]])


def _flat(x: Tensor) -> Tensor:
    """(T, B, K) -> (T*B, K), for the all-steps weight-gradient matmuls."""
    return x.reshape(-1, x.size(-1))


def _gru_update_factors(
    rz: Tensor, cand: Tensor, h_prev: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """What both GRU backwards need from h_t = h_{t-1} + z (h~ - h_{t-1}), for all steps:
    r, σ'(a_r), dL/da_h per dL/dh_t, dL/da_z per dL/dh_t, and dh_t/dh_{t-1} on the direct path."""
    hidden = cand.size(-1)
    r, z = rz[..., :hidden], rz[..., hidden:]
    sig_deriv = rz * (1 - rz)
    factor_n = z * (1 - cand.square())
    factor_z = (cand - h_prev) * sig_deriv[..., hidden:]
    return r, sig_deriv[..., :hidden], factor_n, factor_z, 1 - z


class ElmanLayer(Function):
    """h_t = σ(xproj_t + h_{t-1} W_hᵀ), σ = tanh or relu (IFT6135 A2 eq. 2)."""

    @staticmethod
    def forward(ctx: Any, xproj: Tensor, h0: Tensor, weight: Tensor, relu: bool) -> Tensor:
        with torch.autocast(xproj.device.type, enabled=False):
            xp = xproj.transpose(0, 1)  # (T, B, H), strided view
            out = xp.new_empty(xp.size(0), *h0.shape)  # (T, B, H)
            w_t, h = weight.t(), h0
            for t in range(xp.size(0)):
                h = torch.addmm(xp[t], h, w_t, out=out[t])
                if relu:
                    h.relu_()
                else:
                    h.tanh_()
        ctx.save_for_backward(h0, weight)
        ctx.out, ctx.relu = out, relu
        return out.transpose(0, 1).contiguous()  # (B, T, H), the layout dropout draws in

    @staticmethod
    def backward(ctx: Any, dout: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:
        h0, weight = ctx.saved_tensors
        out: Tensor = ctx.out
        with torch.autocast(out.device.type, enabled=False):
            deriv = (out > 0).to(out.dtype) if ctx.relu else 1 - out.square()  # σ'(a_t)
            da = dout.transpose(0, 1) * deriv  # (T, B, H); the recurrent part is added below
            dh = torch.zeros_like(h0)
            for t in reversed(range(out.size(0))):
                if t < out.size(0) - 1:
                    da[t].addcmul_(dh, deriv[t])
                dh = torch.mm(da[t], weight)  # dL/dh_{t-1} through W_h
            dweight = _flat(da).t() @ _flat(_previous(h0, out))
        return da.transpose(0, 1), dh, dweight, None


class LSTMLayer(Function):
    """Gates [i, f, o, g] = [σ, σ, σ, tanh](xproj_t + h_{t-1} Uᵀ); c_t = f c_{t-1} + i g;
    h_t = o tanh(c_t). Returns h (B, T, H) and c (B, T, H)."""

    @staticmethod
    def forward(
        ctx: Any, xproj: Tensor, h0: Tensor, c0: Tensor, weight: Tensor
    ) -> tuple[Tensor, Tensor]:
        hidden = h0.size(-1)
        split = 3 * hidden
        with torch.autocast(xproj.device.type, enabled=False):
            xp = xproj.transpose(0, 1)  # (T, B, 4H)
            steps = xp.size(0)
            gates = xp.new_empty(steps, h0.size(0), 4 * hidden)  # activations, (T, B, 4H)
            cells = xp.new_empty(steps, *h0.shape)  # c_t, (T, B, H)
            tanh_cells = torch.empty_like(cells)  # tanh(c_t)
            out = torch.empty_like(cells)  # h_t
            w_t, h, c = weight.t(), h0, c0
            for t in range(steps):
                g = torch.addmm(xp[t], h, w_t, out=gates[t])
                g[:, :split].sigmoid_()
                g[:, split:].tanh_()
                c = torch.mul(g[:, hidden : 2 * hidden], c, out=cells[t])
                c.addcmul_(g[:, :hidden], g[:, split:])
                h = torch.mul(
                    g[:, 2 * hidden : split], torch.tanh(c, out=tanh_cells[t]), out=out[t]
                )
        ctx.save_for_backward(h0, c0, weight)
        ctx.buffers = gates, cells, tanh_cells, out
        return out.transpose(0, 1).contiguous(), cells.transpose(0, 1)

    @staticmethod
    def backward(ctx: Any, dout: Tensor, dcells: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        h0, c0, weight = ctx.saved_tensors
        gates, cells, tanh_cells, out = ctx.buffers
        hidden = h0.size(-1)
        steps = out.size(0)
        with torch.autocast(out.device.type, enabled=False):
            i, f = gates[..., :hidden], gates[..., hidden : 2 * hidden]
            o, g = gates[..., 2 * hidden : 3 * hidden], gates[..., 3 * hidden :]
            c_prev = _previous(c0, cells)
            # Per-step factors: dL/da = (upstream gradient) x (one of these), all steps at once.
            dc_from_dh = o * (1 - tanh_cells.square())  # dc_t/dh_t
            sig = gates[..., : 3 * hidden]
            sig_deriv = sig * (1 - sig)
            factor_i = g * sig_deriv[..., :hidden]
            factor_f = c_prev * sig_deriv[..., hidden : 2 * hidden]
            factor_o = tanh_cells * sig_deriv[..., 2 * hidden :]
            factor_g = i * (1 - g.square())
            dout = dout.transpose(0, 1)
            dcells = dcells.transpose(0, 1)
            dgates = torch.empty_like(gates)  # dL/da_t, (T, B, 4H)
            dh = torch.zeros_like(h0)
            dc = torch.zeros_like(c0)  # dL/dc_t from step t+1 (f_{t+1} dc_{t+1})
            for t in reversed(range(steps)):
                dh_t = dout[t] + dh
                dc_t = torch.addcmul(dc + dcells[t], dh_t, dc_from_dh[t])
                torch.mul(dc_t, factor_i[t], out=dgates[t, :, :hidden])
                torch.mul(dc_t, factor_f[t], out=dgates[t, :, hidden : 2 * hidden])
                torch.mul(dh_t, factor_o[t], out=dgates[t, :, 2 * hidden : 3 * hidden])
                torch.mul(dc_t, factor_g[t], out=dgates[t, :, 3 * hidden :])
                dc = dc_t * f[t]
                dh = torch.mm(dgates[t], weight)
            dweight = _flat(dgates).t() @ _flat(_previous(h0, out))
        return dgates.transpose(0, 1), dh, dc, dweight


class GRULayer(Function):
    """IFT6135 assignment 2's GRU, eqs. (5)-(8): [r, z] = σ(xproj_t[:2H] + h_{t-1} U_rzᵀ);
    h~ = tanh(xproj_t[2H:] + (r ⊙ h_{t-1}) U_hᵀ); h_t = h_{t-1} + z ⊙ (h~ - h_{t-1})."""

    @staticmethod
    def forward(ctx: Any, xproj: Tensor, h0: Tensor, weight_rz: Tensor, weight_h: Tensor) -> Tensor:
        split = 2 * h0.size(-1)
        with torch.autocast(xproj.device.type, enabled=False):
            xp = xproj.transpose(0, 1)  # (T, B, 3H)
            steps = xp.size(0)
            rz = xp.new_empty(steps, h0.size(0), split)  # [r, z] activations, (T, B, 2H)
            reset_h = xp.new_empty(steps, *h0.shape)  # r ⊙ h_{t-1}
            cand = torch.empty_like(reset_h)  # h~_t
            out = torch.empty_like(reset_h)  # h_t
            wrz_t, wh_t, h = weight_rz.t(), weight_h.t(), h0
            for t in range(steps):
                gates = torch.addmm(xp[t, :, :split], h, wrz_t, out=rz[t]).sigmoid_()
                reset, update = gates.chunk(2, dim=1)
                rh = torch.mul(reset, h, out=reset_h[t])
                n = torch.addmm(xp[t, :, split:], rh, wh_t, out=cand[t]).tanh_()
                h = torch.lerp(h, n, update, out=out[t])
        ctx.save_for_backward(h0, weight_rz, weight_h)
        ctx.buffers = rz, reset_h, cand, out
        return out.transpose(0, 1).contiguous()  # (B, T, H), the layout dropout draws in

    @staticmethod
    def backward(ctx: Any, dout: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        h0, weight_rz, weight_h = ctx.saved_tensors
        rz, reset_h, cand, out = ctx.buffers
        hidden = h0.size(-1)
        with torch.autocast(out.device.type, enabled=False):
            h_prev = _previous(h0, out)
            r, sig_r, factor_n, factor_z, keep = _gru_update_factors(rz, cand, h_prev)
            factor_r = h_prev * sig_r  # dL/da_r per dL/d(r ⊙ h)
            dout = dout.transpose(0, 1)
            dgates = torch.empty(*out.shape[:2], 3 * hidden, dtype=out.dtype, device=out.device)
            dh = torch.zeros_like(h0)
            for t in reversed(range(out.size(0))):
                dh_t = dout[t] + dh
                da_h = torch.mul(dh_t, factor_n[t], out=dgates[t, :, 2 * hidden :])
                d_rh = torch.mm(da_h, weight_h)  # dL/d(r ⊙ h_{t-1})
                torch.mul(d_rh, factor_r[t], out=dgates[t, :, :hidden])
                torch.mul(dh_t, factor_z[t], out=dgates[t, :, hidden : 2 * hidden])
                dh = torch.addmm(dh_t * keep[t], dgates[t, :, : 2 * hidden], weight_rz)
                dh.addcmul_(d_rh, r[t])
            dweight_rz = _flat(dgates[..., : 2 * hidden]).t() @ _flat(h_prev)
            dweight_h = _flat(dgates[..., 2 * hidden :]).t() @ _flat(reset_h)
        return dgates.transpose(0, 1), dh, dweight_rz, dweight_h


class GRUResetAfterLayer(Function):
    """The reset-after GRU (cuDNN's): rec_t = h_{t-1} Uᵀ + [0, 0, b_hh];
    [r, z] = σ(xproj_t[:2H] + rec_t[:2H]); h~ = tanh(xproj_t[2H:] + r ⊙ rec_t[2H:]);
    h_t = h_{t-1} + z ⊙ (h~ - h_{t-1})."""

    @staticmethod
    def forward(ctx: Any, xproj: Tensor, h0: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        hidden = h0.size(-1)
        split = 2 * hidden
        with torch.autocast(xproj.device.type, enabled=False):
            xp = xproj.transpose(0, 1)  # (T, B, 3H)
            steps = xp.size(0)
            rec = xp.new_empty(steps, h0.size(0), 3 * hidden)  # h U^T + [0, 0, b_hh]
            rz = xp.new_empty(steps, h0.size(0), split)  # [r, z] activations
            cand = xp.new_empty(steps, *h0.shape)  # h~_t
            out = torch.empty_like(cand)  # h_t
            rec_bias = torch.cat([bias.new_zeros(split), bias])
            w_t, h = weight.t(), h0
            for t in range(steps):
                recurrent = torch.addmm(rec_bias, h, w_t, out=rec[t])
                gates = torch.add(xp[t, :, :split], recurrent[:, :split], out=rz[t]).sigmoid_()
                reset, update = gates.chunk(2, dim=1)
                n = torch.addcmul(xp[t, :, split:], reset, recurrent[:, split:], out=cand[t])
                h = torch.lerp(h, n.tanh_(), update, out=out[t])
        ctx.save_for_backward(h0, weight)
        ctx.buffers = rec, rz, cand, out
        return out.transpose(0, 1).contiguous()  # (B, T, H), the layout dropout draws in

    @staticmethod
    def backward(ctx: Any, dout: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        h0, weight = ctx.saved_tensors
        rec, rz, cand, out = ctx.buffers
        hidden = h0.size(-1)
        with torch.autocast(out.device.type, enabled=False):
            h_prev = _previous(h0, out)
            r, sig_r, factor_n, factor_z, keep = _gru_update_factors(rz, cand, h_prev)
            factor_r = rec[..., 2 * hidden :] * sig_r  # dL/da_r per dL/da_n
            dout = dout.transpose(0, 1)
            drec = torch.empty_like(rec)  # dL/drec_t = dL/dxproj_t except the n block
            da_n = torch.empty_like(out)  # dL/dxproj_t, n block
            dh = torch.zeros_like(h0)
            for t in reversed(range(out.size(0))):
                dh_t = dout[t] + dh
                dn = torch.mul(dh_t, factor_n[t], out=da_n[t])
                torch.mul(dn, factor_r[t], out=drec[t, :, :hidden])
                torch.mul(dh_t, factor_z[t], out=drec[t, :, hidden : 2 * hidden])
                torch.mul(dn, r[t], out=drec[t, :, 2 * hidden :])
                dh = torch.addmm(dh_t * keep[t], drec[t], weight)
            dweight = _flat(drec).t() @ _flat(h_prev)
            dbias = _flat(drec[..., 2 * hidden :]).sum(0)
            dxproj = torch.cat([drec[..., : 2 * hidden], da_n], dim=-1)
        return dxproj.transpose(0, 1), dh, dweight, dbias
