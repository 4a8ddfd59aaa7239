"""Sentence mode: each `<s> ... </s>` line is one sequence, batched as padded rows with a mask.

LING 574 HW7 Q1, for the two sentences `<s> the cat sits </s>` and `<s> the model reads the
sentence </s>` in one batch: rows are padded to the longest with <pad>, then inputs are all but
the last column and targets all but the first.

    inputs   <s> the cat   sits  </s> <pad>        targets  the cat   sits  </s> <pad> <pad>
             <s> the model reads the  sentence              the model reads the  sentence </s>

    mask     1 1 1 1 0 0
             1 1 1 1 1 1

The mask is 1 exactly where a target is a real token, so padding is in neither the summed loss
nor the token count that divides it, and a padded batch scores every sentence as it would
alone. (The homework's answer has two slips its own masked-loss matrix does not follow: the second
row's last target written `<s>`, and a mask of the non-pad *inputs*, 1 1 1 1 1 0, which would
train the first row to predict <pad> after </s>.)

Length bucketing keeps padding small: sentences of similar length share a batch. Training
draws a fresh composition every epoch from `(seed, epoch)`, so a resumed epoch replays the same
batches; evaluation sorts by length once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from lmexp.data.batching import Batch
from lmexp.validation import InputError

log = logging.getLogger(__name__)

POOL = 50  # batches' worth of sentences sorted together when bucketing a training epoch


def split_sentences(ids: Tensor, bos_id: int, max_len: int) -> tuple[list[Tensor], int]:
    """Cut a sentence-mode stream at every `<s>`; sequences longer than `max_len` + 1 tokens
    (max_len predictions) are cut to that length. Returns the sequences and how many were cut."""
    if ids.dim() != 1:
        raise ValueError(f"expected a 1-D stream of ids, got shape {tuple(ids.shape)}")
    starts = (ids == bos_id).nonzero().flatten().tolist()
    if not starts or starts[0] != 0:
        raise ValueError("a sentence-mode stream starts every sentence with <s>")
    bounds = [*starts[1:], ids.numel()]
    sequences, cut = [], 0
    for begin, end in zip(starts, bounds, strict=True):
        if end - begin > max_len + 1:
            end, cut = begin + max_len + 1, cut + 1
        if end - begin >= 2:  # <s> alone predicts nothing
            sequences.append(ids[begin:end])
    return sequences, cut


def pad_batch(sequences: Sequence[Tensor], pad_id: int) -> Batch:
    """Inputs, targets and mask of sequences padded to the longest (see the module docstring)."""
    padded = pad_sequence(list(sequences), batch_first=True, padding_value=pad_id)  # (B, L)
    inputs, targets = padded[:, :-1], padded[:, 1:]
    lengths = torch.tensor([s.numel() - 1 for s in sequences])
    mask = torch.arange(inputs.size(1)).unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)
    return Batch(inputs, targets, mask, int(lengths.sum()))


class SentenceBatches:
    """Padded batches of whole sentences; every batch starts from a fresh state."""

    carries_state = False

    def __init__(
        self,
        sequences: list[Tensor],
        batch_size: int,
        pad_id: int,
        shuffle_seed: int | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        """Args:
        sequences: 1-D id tensors, each `<s> ... </s>` (at least 2 tokens).
        shuffle_seed: None reads sentences sorted by length (evaluation); an int draws each
            epoch's bucketed batches and their order from (seed, epoch) (training).
        """
        if not sequences:
            raise InputError(
                "no sentences to batch: every line of the split is empty; check the corpus files"
            )
        if batch_size <= 0:
            raise ValueError(f"batch_size={batch_size} must be positive")
        self.sequences, self.batch_size, self.pad_id = sequences, batch_size, pad_id
        self.shuffle_seed, self.device = shuffle_seed, torch.device(device)
        self.lengths = torch.tensor([s.numel() for s in sequences])

    def __len__(self) -> int:
        return -(-len(self.sequences) // self.batch_size)

    def count_targets(self) -> int:
        """Real tokens one pass predicts (every token but each sentence's <s>)."""
        return int(self.lengths.sum()) - len(self.sequences)

    def _chunks(self, order: Tensor) -> list[Tensor]:
        return list(order.split(self.batch_size))

    def plan(self, epoch: int = 0) -> list[Tensor]:
        """The index batches of `epoch`, in the order they are read."""
        if self.shuffle_seed is None:
            return self._chunks(torch.sort(self.lengths, stable=True).indices)
        generator = torch.Generator().manual_seed(self.shuffle_seed * 1_000_003 + epoch)
        shuffled = torch.randperm(len(self.sequences), generator=generator)
        batches: list[Tensor] = []
        for pool in shuffled.split(self.batch_size * POOL):
            by_length = pool[torch.sort(self.lengths[pool], stable=True).indices]
            batches += self._chunks(by_length)
        order = torch.randperm(len(batches), generator=generator).tolist()
        return [batches[i] for i in order]

    def iterate(self, start: int = 0, epoch: int = 0) -> Iterator[Batch]:
        """The batches of `epoch` from the `start`-th on, on `self.device`."""
        plan = self.plan(epoch)
        if not 0 <= start <= len(plan):
            raise ValueError(f"start={start} is outside [0, {len(plan)}] batches")
        for index in plan[start:]:
            batch = pad_batch([self.sequences[i] for i in index.tolist()], self.pad_id)
            if self.device.type == "cuda":  # from pinned pages, so the copy runs asynchronously
                inputs, targets, mask, count = batch
                batch = Batch(
                    inputs.pin_memory().to(self.device, non_blocking=True),
                    targets.pin_memory().to(self.device, non_blocking=True),
                    mask.pin_memory().to(self.device, non_blocking=True),
                    count,
                )
            elif self.device.type != "cpu":
                batch = Batch(*(t.to(self.device) for t in batch[:3]), batch.num_tokens)
            yield batch

    def __iter__(self) -> Iterator[Batch]:
        return self.iterate()

    def to(self, device: torch.device | str) -> SentenceBatches:
        return SentenceBatches(
            self.sequences, self.batch_size, self.pad_id, self.shuffle_seed, device
        )
