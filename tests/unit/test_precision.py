"""bf16 autocast changes the arithmetic, not the result: evaluation agrees with fp32 closely."""

from __future__ import annotations

import pytest
import torch

from lmexp.models import build_model, model_config_from_dict
from lmexp.runtime.precision import check_precision, cpu_bf16_flags
from lmexp.training.evaluation import evaluate


@pytest.mark.parametrize(
    "model",
    [
        {"name": "lstm"},
        {"name": "gru", "impl": "fused", "gru_variant": "reset_after"},
        {"name": "transformer", "attn_impl": "sdpa", "num_heads": 2},
    ],
)
def test_bf16_evaluation_is_close_to_fp32_but_really_runs_in_bf16(model: dict) -> None:
    torch.manual_seed(0)
    cfg = model_config_from_dict({"emb_size": 32, "hidden_size": 32, "ff_size": 64, **model})
    net = build_model(cfg, vocab_size=300)
    streams = torch.randint(300, (4, 200))
    fp32, count = evaluate(net, streams, seq_len=20, precision="fp32")
    bf16, count16 = evaluate(net, streams, seq_len=20, precision="bf16")
    assert count == count16
    assert bf16 != fp32  # autocast was active
    assert abs(bf16 - fp32) / fp32 < 5e-3  # the summed NLL moves by less than 0.5 %


def test_cpu_bf16_flags_are_read_from_cpuinfo(tmp_path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n\n")
    native = tmp_path / "native"
    native.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile\n")
    assert cpu_bf16_flags(plain) == set()
    assert cpu_bf16_flags(native) == {"avx512_bf16", "amx_bf16"}
    assert cpu_bf16_flags(tmp_path / "absent") is None  # not Linux: unknown, not refused


def test_bf16_on_a_cpu_without_native_bf16_is_refused_before_work() -> None:
    cpu = torch.device("cpu")
    check_precision("fp32", cpu)  # always fine
    if cpu_bf16_flags() == set():
        with pytest.raises(ValueError, match="needs a CPU with native bf16.*precision=fp32"):
            check_precision("bf16", cpu)
    else:
        check_precision("bf16", cpu)
