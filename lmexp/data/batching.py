"""Truncated-BPTT batching: one id stream -> batch-first rows -> (inputs, targets) windows.

The scheme of PyTorch's word_language_model example, batch-first. No padding, no masks, no model.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import Tensor

from lmexp.validation import InputError

# batchify cuts the stream into batch_size contiguous rows, one per row of the batch, dropping
# the tail that does not fill a column. With the alphabet as the stream and batch_size=4:
#
#   a b c d e f g h i j k l m n o p q r s t u v w x y z
#
#   row 0: a b c d e f
#   row 1: g h i j k l        (y z dropped)
#   row 2: m n o p q r
#   row 3: s t u v w x
#
# Rows are independent streams: the model carries its state from one window to the next
# within a row (detached, hence "truncated" BPTT), never across rows. bptt_windows then slices
# columns; with seq_len=2 the targets are the inputs shifted by one along each row:
#
#   inputs   a b | c d | e        targets  b c | d e | f
#            g h | i j | k                 h i | j k | l
#            ...                           ...
#
# The last column (f, l, r, x) is never an input, having nothing to predict; every other
# position is predicted exactly once per epoch.


def batchify(ids: Tensor, batch_size: int) -> Tensor:
    """Arrange a 1-D id stream as (batch_size, n): row b is the b-th contiguous slice."""
    if ids.dim() != 1:
        raise ValueError(f"batchify takes a 1-D stream of ids, got shape {tuple(ids.shape)}")
    if batch_size <= 0:
        raise ValueError(f"batch_size={batch_size} must be positive")
    n = ids.numel() // batch_size
    if n < 2:
        raise InputError(
            f"a split of {ids.numel()} tokens is too short for batch_size={batch_size}: each row "
            "needs at least 2 tokens (an input and its target); lower data.batch_size "
            "(or data.eval_batch_size for valid/test)"
        )
    return ids[: n * batch_size].view(batch_size, n)  # (B, n)


def _predictable(streams: Tensor) -> int:
    if streams.dim() != 2:
        raise ValueError(f"expected (batch, n) streams from batchify, got {tuple(streams.shape)}")
    return streams.size(1) - 1


def num_windows(streams: Tensor, seq_len: int) -> int:
    """Windows in one pass over `streams`, counting a shorter last one."""
    if seq_len <= 0:
        raise ValueError(f"seq_len={seq_len} must be positive")
    return -(-_predictable(streams) // seq_len)  # ceil


def count_targets(streams: Tensor) -> int:
    """Tokens one pass predicts: the denominator of a token-weighted perplexity.

    It does not depend on seq_len, since the windows cover every predictable position once.
    """
    return streams.size(0) * _predictable(streams)


def bptt_windows(streams: Tensor, seq_len: int, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield (inputs, targets), each (B, T), T = seq_len except maybe a shorter last window.

    Args:
        start: index of the first window to yield, so a resumed epoch skips what it has seen;
            start == num_windows yields nothing.
    """
    total = num_windows(streams, seq_len)
    if not 0 <= start <= total:
        raise ValueError(f"start={start} is outside [0, {total}] windows of seq_len={seq_len}")
    predictable = _predictable(streams)
    for window in range(start, total):
        pos = window * seq_len
        length = min(seq_len, predictable - pos)
        inputs = streams[:, pos : pos + length]  # (B, T)
        targets = streams[:, pos + 1 : pos + 1 + length]  # (B, T)
        yield inputs, targets


class Batch(NamedTuple):
    """One training or evaluation step's data.

    `mask` is True where a target is a real token (None: all are); padding counts in neither
    the loss nor `num_tokens`, the denominator of the batch's mean loss and of perplexity.
    """

    inputs: Tensor  # (B, T)
    targets: Tensor  # (B, T)
    mask: Tensor | None  # (B, T) bool
    num_tokens: int


class StreamBatches:
    """Contiguous streams read in truncated-BPTT windows; the state carries across windows."""

    carries_state = True

    def __init__(self, streams: Tensor, seq_len: int) -> None:
        self.streams, self.seq_len = streams, seq_len
        self.batch_size = streams.size(0)
        self.device = streams.device
        self._len = num_windows(streams, seq_len)

    def __len__(self) -> int:
        return self._len

    def count_targets(self) -> int:
        return count_targets(self.streams)

    def iterate(self, start: int = 0, epoch: int = 0) -> Iterator[Batch]:
        """The windows from the `start`-th on (every epoch reads them in the same order)."""
        for inputs, targets in bptt_windows(self.streams, self.seq_len, start):
            yield Batch(inputs, targets, None, targets.numel())

    def __iter__(self) -> Iterator[Batch]:
        return self.iterate()

    def to(self, device: torch.device | str) -> StreamBatches:
        return StreamBatches(self.streams.to(device), self.seq_len)
