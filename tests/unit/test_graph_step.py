"""The CUDA-graph step's bookkeeping, on CPU: when it captures, what it copies, when it falls back.

A CUDA graph replays recorded kernels on fixed tensors, so what can go wrong around it is
bookkeeping: a window or a carried state not copied into the graph's tensors, a learning-rate
change that keeps replaying the old rate, an odd-shaped window replayed with the wrong shape.
`Replayer` below records nothing: its "replay" runs the eager step on the graph's own tensors,
exactly the tensors a real replay reads, so a missed copy changes the weights here too. The
real capture is checked against eager on a GPU in tests/cuda/.
"""

from __future__ import annotations

import pytest
import torch

from lmexp.data import batchify
from lmexp.models import build_model, model_config
from lmexp.training.graph import GraphedStep, graph_wanted
from lmexp.training.schema import TrainerConfig
from lmexp.training.trainer import Trainer

CUDA = torch.device("cuda")  # a device object only: nothing runs on it here


class Replayer:
    """Capture without a GPU: warm-up runs the step; replay reruns it on the static tensors."""

    def __init__(self, fail: bool = False) -> None:
        self.fail, self.replays = fail, 0

    def warm(self, run, device):
        return run()

    def capture(self, run):
        if self.fail:
            raise RuntimeError("operation not permitted when stream is capturing")

        def replay():
            self.replays += 1
            return run()

        return replay


def _trainer(name: str, backend: Replayer | None, lr=lambda epoch: 0.5) -> Trainer:
    torch.manual_seed(0)
    sizes = {"num_heads": 2, "ff_size": 16} if name == "transformer" else {"emb_size": 8}
    model = build_model(model_config(name=name, hidden_size=8, num_layers=2, **sizes), 11)
    stream = torch.arange(4 * 83) % 11  # 83 tokens a row: windows of 10, the last one of 2
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    trainer = Trainer(
        model,
        optimizer,
        lr,
        batchify(stream, 4),
        batchify(stream, 2),
        10,
        TrainerConfig(max_epochs=3, eval_every=1.0, checkpoint_every=None, progress="off"),
        on_eval=lambda point: None,
    )
    if backend is not None:
        step = lambda i, t, h: trainer._step(i, t, h, None, t.numel())  # noqa: E731
        trainer.graphed = GraphedStep(step, optimizer, warmup=2, backend=backend)
    return trainer


@pytest.mark.parametrize("name", ["lstm", "gru", "transformer"])
def test_replayed_steps_end_at_the_eager_weights(name: str) -> None:
    # three epochs of 9 windows (the 9th shorter), the lr halved every epoch
    halving = lambda epoch: 0.5 / 2**epoch  # noqa: E731
    eager, graphed = _trainer(name, None, halving), _trainer(name, Replayer(), halving)
    eager.fit(), graphed.fit()
    for a, b in zip(eager.model.parameters(), graphed.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert graphed.state.last_row["train_loss"] == eager.state.last_row["train_loss"]
    steps = graphed.graphed
    assert steps.captures == 3  # once per learning rate
    # per epoch: 8 full windows (warm-up 2, then 1 after a new lr) and one short eager one
    assert steps.backend.replays == (8 - 2) + (8 - 1) + (8 - 1)


def test_a_failed_capture_trains_on_eagerly_with_the_same_result() -> None:
    eager, fallback = _trainer("gru", None), _trainer("gru", Replayer(fail=True))
    eager.fit(), fallback.fit()
    assert fallback.graphed.failed and fallback.graphed.captures == 0
    for a, b in zip(eager.model.parameters(), fallback.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_graph_wanted_resolves_auto_and_names_what_stands_in_the_way() -> None:
    assert graph_wanted("auto", CUDA, "stream", compiled=False)
    assert not graph_wanted("auto", torch.device("cpu"), "stream", compiled=False)
    assert not graph_wanted("auto", CUDA, "sentences", compiled=False)
    assert not graph_wanted("auto", CUDA, "stream", compiled=True)
    assert not graph_wanted("off", CUDA, "stream", compiled=False)
    with pytest.raises(ValueError, match=r"cuda_graph=on cannot capture: device is cpu"):
        graph_wanted("on", torch.device("cpu"), "stream", compiled=False)
    with pytest.raises(ValueError, match=r"data.mode=sentences.*; compile=true"):
        graph_wanted("on", CUDA, "sentences", compiled=True)
