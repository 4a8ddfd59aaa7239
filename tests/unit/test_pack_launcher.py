"""Which jobs the packed launcher trains together (lmexp/pack/launcher.py): the jobs whose
validated configs differ only in packable keys, up to `pack` at a time; the others alone, each
with its reason in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmexp.config import to_train_config
from lmexp.pack.launcher import PlannedJob, group, pack_key, unpackable_reason

BASE = ["model=gru", "optim=adam"]


@pytest.fixture
def config(compose):
    def make(*overrides: str):
        return to_train_config(compose([*BASE, *overrides]))

    return make


@pytest.mark.parametrize(
    "overrides",
    [
        ["seed=7"],
        ["optim.lr=0.1"],
        ["optim.weight_decay=1e-4"],
        ["optim=sgd"],
        ["model.dropout=0.5"],
        ["trainer.max_steps=7"],
        ["trainer.clip_norm=1.0"],
        ["schedule=decay"],
        ["logger=tensorboard"],
    ],
)
def test_jobs_that_differ_in_packable_keys_pack(config, overrides) -> None:
    assert pack_key(config(*overrides)) == pack_key(config())


@pytest.mark.parametrize(
    "overrides",
    [
        ["model.hidden_size=64"],
        ["model=lstm"],
        ["data.batch_size=10"],
        ["data.seq_len=20"],
        ["device=cpu"],
        ["threads=1"],
    ],
)
def test_jobs_that_differ_in_shape_data_or_device_do_not(config, overrides) -> None:
    assert pack_key(config(*overrides)) != pack_key(config())


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        (["model=lstm", "model.impl=fused"], "model.impl=fused runs nn.RNN/GRU/LSTM"),
        (["data.mode=sentences"], "data.mode=sentences: padded batches differ in shape"),
        (["precision=bf16"], "precision=bf16: packs train in fp32 only"),
        (["compile=true"], "compile=true"),
        (
            ["model=transformer", "model.attn_impl=sdpa", "model.dropout=0.1"],
            "model.attn_impl=sdpa draws attention dropout inside the fused kernel",
        ),
    ],
)
def test_what_cannot_pack_says_why_in_one_line(config, overrides, reason) -> None:
    line = unpackable_reason(config(*overrides))
    assert line is not None and line.startswith(reason) and "\n" not in line
    assert unpackable_reason(config()) is None


def test_every_architecture_marked_packable_runs_a_packed_step(config) -> None:
    """Architecture.packs is what the launcher trusts: each such architecture takes one packed
    step; the others are refused in one line before any job starts."""
    import torch

    from lmexp.models import build_model, model_config_from_dict
    from lmexp.models.registry import ARCHITECTURES
    from lmexp.pack.step import PackedStep, stack_states

    sizes = {"emb_size": 8, "hidden_size": 8, "num_heads": 2, "ff_size": 16, "dropout": 0.1}
    for name, arch in ARCHITECTURES.items():
        if not arch.packs:
            if arch.builtin:
                assert unpackable_reason(config(f"model={name}")).startswith(f"model={name} ")
            continue
        models = [build_model(model_config_from_dict({"name": name, **sizes}), 30) for _ in "ab"]
        tokens = torch.randint(0, 30, (2, 3, 5))
        hidden = stack_states([m.init_state(3, torch.device("cpu")) for m in models])
        losses, _ = PackedStep(models).forward([0, 1], tokens, tokens, hidden)
        assert losses.shape == (2,) and bool(torch.isfinite(losses).all()), name


def _job(index: int, key: str | None, reason: str | None = None) -> PlannedJob:
    return PlannedJob(index, [], None, Path(str(index)), key, reason)  # type: ignore[arg-type]


def test_groups_are_packs_of_up_to_pack_jobs_in_job_order() -> None:
    jobs = [_job(0, "a"), _job(1, "b"), _job(2, "a"), _job(3, None, "fused"), _job(4, "a")]
    groups = group(jobs, 2)
    assert [[j.index for j in g] for g in groups] == [[0, 2], [1], [3], [4]]
    assert groups[1][0].reason == "no other job of the batch builds the same model on the same data"
    assert groups[2][0].reason == "fused"
    assert [[j.index for j in g] for g in group(jobs, 8)] == [[0, 2, 4], [1], [3]]
