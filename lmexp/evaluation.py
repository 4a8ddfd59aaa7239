"""Evaluation of a model on a whole batchified split: summed NLL and predicted-token count."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lmexp.data.batching import bptt_windows
from lmexp.models.base import LanguageModel


def evaluate(model: LanguageModel, streams: torch.Tensor, seq_len: int) -> tuple[float, int]:
    """Summed NLL and number of predicted tokens over a whole batchified split.

    The hidden state starts at zero and is carried across windows, exactly as in training, so
    every stream is read as one long sequence. Dropout is off; training mode is restored after.
    """
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=streams.device)
    count = 0
    with torch.inference_mode():
        state = model.init_state(streams.size(0), streams.device)
        for inputs, targets in bptt_windows(streams, seq_len):
            logits, state = model(inputs, state)  # (B, T, V)
            nll = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum")
            total += nll.double()
            count += targets.numel()
    model.train(was_training)
    return total.item(), count
