"""The CUDA paths, run on a GPU: graph vs eager, no host sync, bf16, cuDNN, sdpa, the record.

Skipped without CUDA; `scripts/gpu_check.sh` runs them (`pytest -m cuda`) and allows no skip.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch

from lmexp.data import batchify
from lmexp.models import build_model, model_config
from lmexp.runtime.device import job_device
from lmexp.training.optim import build_optimizer
from lmexp.training.schema import TrainerConfig
from lmexp.training.trainer import Trainer

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

VOCAB, BATCH, SEQ = 50, 8, 12
CUDA = torch.device("cuda")
# (architecture, schema keys): the scratch recurrences the graph is for, cuDNN, attention
MODELS = {
    "rnn": {"impl": "scratch"},
    "gru": {"impl": "scratch"},
    "lstm": {"impl": "fused"},
    "transformer": {"attn_impl": "sdpa", "num_heads": 2, "ff_size": 32},
}


def _model(name: str, **extra):
    keys = {"hidden_size": 16, "num_layers": 2, "dropout": 0.0, **MODELS[name], **extra}
    if name != "transformer":
        keys["emb_size"] = 16
    torch.manual_seed(0)
    return build_model(model_config(name=name, **keys), VOCAB).to(CUDA)


def _trainer(model, optim: str, graph: bool, precision: str = "fp32", epochs: int = 2):
    from lmexp.training.optim import OptimConfig

    optimizer = build_optimizer(
        model.parameters(), OptimConfig(name=optim, lr=0.01), capturable=graph
    )
    stream = torch.randint(
        VOCAB, (BATCH * (5 * SEQ + 4),), generator=torch.Generator().manual_seed(1)
    )
    return Trainer(
        model,
        optimizer,
        lambda epoch: 0.01 / (1 + epoch),  # a new lr each epoch: the graph is recaptured
        batchify(stream, BATCH).to(CUDA),
        batchify(stream, 4).to(CUDA),
        SEQ,
        TrainerConfig(max_epochs=epochs, eval_every=1.0, checkpoint_every=None, progress="off"),
        on_eval=lambda point: None,
        precision=precision,
        cuda_graph=graph,
    )


@pytest.mark.parametrize("optim", ["sgd", "adam"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_graph_replay_ends_at_the_eager_weights(name: str, optim: str) -> None:
    eager = _trainer(_model(name), optim, graph=False)
    graphed = _trainer(_model(name), optim, graph=True)
    eager.fit()
    graphed.fit()
    assert graphed.graphed is not None and not graphed.graphed.failed
    assert graphed.graphed.captures == 2  # one per learning rate
    for a, b in zip(eager.model.parameters(), graphed.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert graphed.state.last_row["train_loss"] == pytest.approx(
        eager.state.last_row["train_loss"], rel=1e-5
    )


@contextmanager
def _no_host_sync():
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("graph", [False, True])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_training_step_never_waits_for_the_device(name: str, graph: bool) -> None:
    trainer = _trainer(_model(name), "adam", graph=graph)
    windows = [(i, t) for i, t, _, _ in trainer.train_data.iterate()][:6]
    hidden = trainer.model.init_state(BATCH, CUDA)
    for inputs, targets in windows[:4]:  # warm-up and capture may allocate and sync
        hidden = trainer.train_step(inputs, targets, hidden)
    with _no_host_sync():
        for inputs, targets in windows[4:]:
            hidden = trainer.train_step(inputs, targets, hidden)
    torch.cuda.synchronize()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_bf16_autocast_keeps_fp32_weights_and_loss(name: str) -> None:
    trainer = _trainer(_model(name), "adam", graph=False, precision="bf16", epochs=1)
    state = trainer.fit()
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    assert torch.isfinite(torch.tensor(state.last_row["train_loss"]))
    assert trainer._loss_sum.dtype == torch.float64


def test_sdpa_and_the_assignment_attention_agree() -> None:
    scratch, sdpa = _model("transformer", attn_impl="scratch"), _model("transformer")
    sdpa.load_state_dict(scratch.state_dict())
    tokens = torch.randint(VOCAB, (BATCH, SEQ), device=CUDA)
    a, _ = scratch(tokens, None)
    b, _ = sdpa(tokens, None)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_fused_recurrences_run_on_cudnn() -> None:
    for name in ("rnn", "gru", "lstm"):
        extra = {"impl": "fused", "gru_variant": "reset_after"} if name == "gru" else {}
        model = _model(name, **({"impl": "fused"} | extra))
        layer = next(m for m in model.modules() if isinstance(m, torch.nn.RNNBase))
        assert next(layer.parameters()).is_cuda and torch.backends.cudnn.is_available()
        trainer = _trainer(model, "sgd", graph=True, epochs=1)
        assert torch.isfinite(torch.tensor(trainer.fit().last_row["train_loss"]))


def test_packed_jobs_share_one_gpu(tmp_path) -> None:
    with (
        job_device("auto", tmp_path, jobs_per_gpu=2) as (a, _),
        job_device("auto", tmp_path, jobs_per_gpu=2) as (b, _),
    ):
        assert a.type == b.type == "cuda"
        if torch.cuda.device_count() == 1:
            assert a == b
