"""Evaluation of a model on a whole split: summed NLL and the count of real predicted tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F

from lmexp.data import Batches, as_batches
from lmexp.models.base import LanguageModel
from lmexp.runtime.precision import autocast

# Stateless models (the Transformer) see each window on its own, so several windows of a split
# can be scored in one forward pass: bigger matmuls, the very same windows and result. It pays
# where kernels are launch-bound (GPU); on CPU with a 10,000-word vocabulary the (N, V) buffers
# outgrow the caches and it was slower (2.0 s -> 3.0 s for one tiny Transformer's validation).
STATELESS_GROUP = {"cuda": 8}  # device type -> windows per pass; others: 1
IGNORE = -100  # the target id cross_entropy skips: where a padded target stands


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


def ignore_padding(targets: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """`targets` with IGNORE where `mask` is False (padding), for `cross_entropy`."""
    return targets if mask is None else targets.masked_fill(~mask, IGNORE)


def evaluate(
    model: LanguageModel,
    data: torch.Tensor | Batches,
    seq_len: int | None = None,
    precision: str = "fp32",
    stateless_group: int | None = None,
    on_batch: Callable[[int], object] | None = None,
) -> tuple[float, int]:
    """Summed NLL and number of predicted (real) tokens over a whole split.

    `data` is a split's batches (`make_batches`) or a (B, n) stream tensor from `batchify`
    read in `seq_len` windows. On streams the hidden state starts at zero and is carried across
    windows, exactly as in training, so every stream is read as one long sequence; a model
    without state has each window scored on its own, `stateless_group` windows per forward
    pass (default: `STATELESS_GROUP`). Sentence batches each start from a fresh state and
    count only their real tokens. `on_batch(n)` is told each forward pass's windows (a
    progress bar's update). Dropout is off; training mode is restored after. The loss is
    summed in fp32 (float64 across batches) whatever `precision` the forward pass uses.
    """
    batches = as_batches(data, seq_len)
    device = batches.device
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    with torch.inference_mode():
        state = model.init_state(batches.batch_size, device)
        if batches.carries_state:
            windows: Iterable = ((b.inputs, b.targets) for b in batches)
            group = stateless_group or STATELESS_GROUP.get(device.type, 1)
            if state is None and group > 1:
                windows = _grouped(windows, group)
            items: Iterable = ((i, t, None, t.numel()) for i, t in windows)
        else:
            items = batches
        for inputs, targets, mask, num_tokens in items:
            if not batches.carries_state:
                state = model.init_state(inputs.size(0), device)
            # No backward here, so the fused loss has nothing to save; measured slower on CPU.
            with autocast(device, precision):
                logits, state = model(inputs, state)  # (B, T, V)
            nll = F.cross_entropy(
                logits.flatten(0, 1).float(),
                ignore_padding(targets, mask).flatten(),
                reduction="sum",
                ignore_index=IGNORE,
            )
            total += nll.double()
            count += num_tokens
            if on_batch is not None:
                grouped = inputs.size(0) // batches.batch_size if batches.carries_state else 1
                on_batch(max(1, grouped))  # windows scored in this pass
    model.train(was_training)
    return total.item(), count
