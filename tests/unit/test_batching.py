"""Truncated-BPTT batching on hand-made streams: shapes, the one-token shift, full coverage."""

from __future__ import annotations

import pytest
import torch

from lmexp.data import batchify, bptt_windows, count_targets, num_windows


def test_batchify_rows_are_contiguous_slices_and_tail_is_dropped() -> None:
    ids = torch.arange(26)
    streams = batchify(ids, 4)
    assert streams.shape == (4, 6)
    assert streams.dtype == ids.dtype
    assert streams[1].tolist() == list(range(6, 12))
    assert streams.flatten().tolist() == list(range(24))  # 24, 25 dropped


def test_batchify_too_short_split() -> None:
    with pytest.raises(ValueError, match="too short for batch_size=10"):
        batchify(torch.arange(15), 10)
    with pytest.raises(ValueError, match="1-D"):
        batchify(torch.zeros(2, 3, dtype=torch.long), 1)


def test_windows_shift_targets_by_one_including_across_boundaries() -> None:
    streams = batchify(torch.arange(100), 4)  # (4, 25)
    windows = list(bptt_windows(streams, seq_len=7))
    for inputs, targets in windows:
        assert inputs.shape == targets.shape
        assert torch.equal(targets[:, :-1], inputs[:, 1:])
        assert torch.equal(targets, inputs + 1)  # a stream of consecutive ids
    for (_, prev_targets), (next_inputs, _) in zip(windows, windows[1:], strict=False):
        assert torch.equal(prev_targets[:, -1], next_inputs[:, 0])


def test_shorter_last_window() -> None:
    streams = batchify(torch.arange(100), 4)  # 24 predictable positions per row
    shapes = [tuple(inputs.shape) for inputs, _ in bptt_windows(streams, seq_len=7)]
    assert shapes == [(4, 7), (4, 7), (4, 7), (4, 3)]
    assert num_windows(streams, 7) == 4
    assert num_windows(streams, 8) == 3  # 24 = 3 * 8: no short window


def test_every_position_is_predicted_exactly_once() -> None:
    streams = batchify(torch.arange(103), 5)  # (5, 20)
    predicted = torch.cat([t.flatten() for _, t in bptt_windows(streams, seq_len=6)])
    expected = torch.cat([row[1:] for row in streams])
    assert sorted(predicted.tolist()) == sorted(expected.tolist())
    assert predicted.numel() == count_targets(streams) == 5 * 19


def test_start_skips_windows() -> None:
    streams = batchify(torch.arange(100), 4)
    all_windows = list(bptt_windows(streams, seq_len=5))
    resumed = list(bptt_windows(streams, seq_len=5, start=2))
    assert len(resumed) == len(all_windows) - 2
    for (a_in, a_tg), (b_in, b_tg) in zip(all_windows[2:], resumed, strict=True):
        assert torch.equal(a_in, b_in) and torch.equal(a_tg, b_tg)
    assert list(bptt_windows(streams, 5, start=len(all_windows))) == []
    with pytest.raises(ValueError, match="start"):
        next(bptt_windows(streams, 5, start=len(all_windows) + 1))
