"""Evaluation of a model on a whole batchified split: summed NLL and predicted-token count."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
import torch.nn.functional as F

from lmexp.data.batching import bptt_windows
from lmexp.models.base import LanguageModel
from lmexp.precision import autocast

# Stateless models (the Transformer) see each window on its own, so several windows of a split
# can be scored in one forward pass: bigger matmuls, the very same windows and result. It pays
# where kernels are launch-bound (GPU); on CPU with a 10,000-word vocabulary the (N, V) buffers
# outgrow the caches and it was slower (2.0 s -> 3.0 s for one tiny Transformer's validation).
STATELESS_GROUP = {"cuda": 8}  # device type -> windows per pass; others: 1


def _grouped(
    windows: Iterable[tuple[torch.Tensor, torch.Tensor]], size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Concatenate up to `size` consecutive windows of equal length along the batch axis."""
    buffer: list[tuple[torch.Tensor, torch.Tensor]] = []
    for window in windows:
        if buffer and (len(buffer) == size or window[0].shape != buffer[0][0].shape):
            yield torch.cat([w[0] for w in buffer]), torch.cat([w[1] for w in buffer])
            buffer = []
        buffer.append(window)
    if buffer:
        yield torch.cat([w[0] for w in buffer]), torch.cat([w[1] for w in buffer])


def evaluate(
    model: LanguageModel,
    streams: torch.Tensor,
    seq_len: int,
    precision: str = "fp32",
    stateless_group: int | None = None,
) -> tuple[float, int]:
    """Summed NLL and number of predicted tokens over a whole batchified split.

    The hidden state starts at zero and is carried across windows, exactly as in training, so
    every stream is read as one long sequence. A model without state has each window scored on
    its own, `stateless_group` windows per forward pass (default: `STATELESS_GROUP`). Dropout
    is off; training mode is restored after. The loss is summed in fp32 (float64 across
    windows) whatever `precision` the forward pass uses.
    """
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=streams.device)
    count = 0
    with torch.inference_mode():
        state = model.init_state(streams.size(0), streams.device)
        windows: Iterable = bptt_windows(streams, seq_len)
        group = stateless_group or STATELESS_GROUP.get(streams.device.type, 1)
        if state is None and group > 1:
            windows = _grouped(windows, group)
        for inputs, targets in windows:
            # No backward here, so the fused loss has nothing to save; measured slower on CPU.
            with autocast(streams.device, precision):
                logits, state = model(inputs, state)  # (B, T, V)
            nll = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), reduction="sum")
            total += nll.double()
            count += targets.numel()
    model.train(was_training)
    return total.item(), count
