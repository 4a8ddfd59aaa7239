"""The pack's rendezvous (lmexp/pack/lockstep.py): member jobs in their own threads hand their
steps in; each member follows its trajectory alone, however long it stays in the pack, with its
own dropout rate and its own stream of masks."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

import pytest
import torch

from lmexp.pack.lockstep import Member, Pack
from lmexp.run import signals
from lmexp.run.signals import JobInterrupted
from lmexp.training.optim import build_optimizer
from tests.unit.test_pack_step import CLIP, MEMBERS, _alone, _batches, _model

CPU = torch.device("cpu")


def _member_thread(
    pack: Pack,
    k: int,
    steps: int,
    out: dict[int, object],
    then: Callable[[], None] | None = None,
) -> threading.Thread:
    """Member k trains `steps` steps through the pack (as its trainer would), then calls
    `then()` if given, and leaves (with what ended it, as the launcher's member threads do)."""

    def body() -> None:
        ended: BaseException | None = None
        try:
            config = MEMBERS[k]
            model = _model("gru", config["seed"], dropout=config["dropout"])
            optimizer = build_optimizer(model.parameters(), config["optim"])
            step = Member(pack, k, [], CPU).stepper(model, optimizer, CLIP, "token")
            hidden = model.init_state(4, CPU)
            losses = []
            for inputs, targets in _batches(config["seed"])[:steps]:
                hidden, loss = step(inputs, targets, hidden, None, targets.numel())
                losses.append(loss.item())
            out[k] = losses
            if then is not None:
                then()
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            out[k] = ended = exc
        finally:
            pack.leave(k, ended)

    return threading.Thread(target=body)


def test_members_of_different_lengths_each_follow_their_job_alone() -> None:
    lengths = [50, 10, 30]  # member 1 leaves first (its budget), then member 2
    pack, out = Pack(len(MEMBERS)), {}
    threads = [_member_thread(pack, k, n, out) for k, n in enumerate(lengths)]
    for k, thread in enumerate(threads):  # one at a time until its first step, as launched
        thread.start()
        assert pack.ready[k].wait(30)
    for thread in threads:
        thread.join(60)
    for k, member in enumerate(MEMBERS):
        alone, _ = _alone("gru", member)
        torch.testing.assert_close(out[k], alone[: lengths[k]], rtol=1e-5, atol=0)
    assert pack.steps == 50  # never a step without every member still training


def test_a_stopped_pack_interrupts_every_member_at_its_next_step() -> None:
    pack = Pack(2)
    model = _model("gru", 1)
    optimizer = build_optimizer(model.parameters(), MEMBERS[0]["optim"])
    step = Member(pack, 0, [], CPU).stepper(model, optimizer, CLIP, "token")
    inputs, targets = _batches(1)[0]
    caught: list[BaseException] = []

    def waiting() -> None:  # member 1 never comes: member 0 waits until the stop
        try:
            step(inputs, targets, model.init_state(4, CPU), None, targets.numel())
        except BaseException as exc:  # noqa: BLE001
            caught.append(exc)

    thread = threading.Thread(target=waiting)
    thread.start()
    assert pack.ready[0].wait(30)
    pack.stop("SIGTERM")
    thread.join(30)
    assert isinstance(caught[0], JobInterrupted) and caught[0].signal_name == "SIGTERM"
    with pytest.raises(JobInterrupted):  # and whoever comes next
        step(inputs, targets, model.init_state(4, CPU), None, targets.numel())


def test_a_signal_held_back_in_one_member_stops_the_whole_pack() -> None:
    """SIGTERM while member 0 writes a checkpoint (signals.deferred) is raised in member 0's
    thread, not the main thread, when the write is done: the other members stop at their next
    step too, instead of training on to their budgets after the command was told to stop."""

    def checkpoint_under_sigterm() -> None:
        with signals.deferred():
            os.kill(os.getpid(), signal.SIGTERM)  # the main thread's handler holds it back
            deadline = time.monotonic() + 30
            while not signals._pending and time.monotonic() < deadline:
                time.sleep(0.01)

    pack, out = Pack(2), {}
    threads = [
        _member_thread(pack, 0, 2, out, then=checkpoint_under_sigterm),
        _member_thread(pack, 1, 50, out),
    ]
    with signals.handling():
        for k, thread in enumerate(threads):
            thread.start()
            assert pack.ready[k].wait(30)
        deadline = time.monotonic() + 60
        for thread in threads:
            while thread.is_alive() and time.monotonic() < deadline:
                thread.join(0.05)  # the main thread runs the handler meanwhile
    if any(thread.is_alive() for thread in threads):  # a pack that never ends: free its threads
        pack.stop("SIGKILL")
        pytest.fail("the members were still training 60 s after SIGTERM")
    for k in (0, 1):
        assert isinstance(out[k], JobInterrupted) and out[k].signal_name == "SIGTERM", out[k]


def test_a_step_that_fails_fails_every_member_of_it() -> None:
    pack, out = Pack(2), {}
    models = [_model("gru", 1), _model("gru", 2, hidden_size=16)]  # shapes that cannot stack
    errors: dict[int, BaseException] = {}

    def body(k: int) -> None:
        optimizer = build_optimizer(models[k].parameters(), MEMBERS[k]["optim"])
        step = Member(pack, k, [], CPU).stepper(models[k], optimizer, CLIP, "token")
        inputs, targets = _batches(k)[0]
        try:
            step(inputs, targets, models[k].init_state(4, CPU), None, targets.numel())
        except Exception as exc:  # noqa: BLE001
            errors[k] = exc
        finally:
            pack.leave(k)

    threads = [threading.Thread(target=body, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(errors) == [0, 1] and errors[0] is errors[1], (errors, out)
