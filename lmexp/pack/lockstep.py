"""K jobs of one process training in lockstep: each job's trainer hands its step to the pack, and
the pack runs the steps of all its members as one batched step (step.py).

Every member is a whole job: its own thread runs the ordinary job (run directory, metrics,
evaluation, checkpoints, summary, status), and only the training step goes through here. A
member's `step` blocks until every member still training has handed in its own; the last to
arrive runs the packed forward and backward, then each member's own clipping and optimizer
step, and every member returns with its new state and loss. A member that stops (its budget,
divergence, a failure, an early stop) leaves, and the others go on without it; a member that
evaluates or saves keeps the others waiting, which is what lockstep means.

Members start one at a time (the launcher waits for each to hand in its first step before it
starts the next), so the parts of a job that use process-wide state (Hydra's config singleton,
the global RNG the model is initialised from) never overlap. At its first step a member takes
its own generator from where the process's stands then (after its seed, its model's
initialisation and any resume), exactly where the job alone would draw its first dropout mask;
its masks come from that stream, and its checkpoints save that stream's state.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from lmexp.models.base import LanguageModel, State
from lmexp.pack.step import PackedStep, member_state, stack_states
from lmexp.run.signals import JobInterrupted, JobPreempted
from lmexp.runtime.device import process_stream
from lmexp.training.trainer import StepFn


@dataclass
class _Request:
    """One member's step: what the pack needs to run it as the member alone would."""

    model: LanguageModel
    optimizer: torch.optim.Optimizer
    clip_norm: float | None
    scale: float  # the objective's factor over the mean loss (trainer.loss_average=time_sum)
    inputs: Tensor
    targets: Tensor
    hidden: State
    generator: torch.Generator | None  # the member's dropout stream (None: the process's)


class Pack:
    """The rendezvous of `size` member jobs (indices 0..size-1)."""

    def __init__(self, size: int) -> None:
        self._cond = threading.Condition()
        self._training = set(range(size))  # members that have not left
        self._waiting: dict[int, _Request] = {}
        self._results: dict[int, tuple[State, Tensor] | BaseException] = {}
        self._steps: dict[tuple[int, ...], PackedStep] = {}
        self._stop: str | None = None
        # set once a member hands in its first step or leaves: the launcher starts the next
        self.ready = [threading.Event() for _ in range(size)]
        self.steps = 0  # packed steps run (each with every member then training)

    def step(self, k: int, request: _Request) -> tuple[State, Tensor]:
        """Member k's step, run with the others' once all members training have handed in."""
        with self._cond:
            if self._stop is not None:
                raise JobInterrupted(self._stop)
            self._waiting[k] = request
            self.ready[k].set()
            self._run_if_complete()
            while k not in self._results:
                self._cond.wait()
            result = self._results.pop(k)
        if isinstance(result, BaseException):
            raise result
        return result

    def training(self, k: int) -> bool:
        """Whether member k has not left."""
        with self._cond:
            return k in self._training

    def leave(self, k: int, reason: BaseException | None = None) -> None:
        """Member k trains no more; the others no longer wait for it.

        `reason`: what ended its job, if it raised. A member stopped by a signal (Ctrl-C,
        SIGTERM, SIGHUP) stops the pack: the signal was meant for the whole process, and it may
        have reached this member alone (held back while it wrote a checkpoint, then raised in
        its thread: signals.deferred). A preempted member does not: each member sees the
        preemption itself, saves its step and stops (JobPreempted).
        """
        with self._cond:
            self._training.discard(k)
            self.ready[k].set()
            if isinstance(reason, KeyboardInterrupt) and not isinstance(reason, JobPreempted):
                self._stop_all(getattr(reason, "signal_name", "SIGINT"))
            self._run_if_complete()

    def stop(self, signal_name: str) -> None:
        """A signal reached the process: every member stops at its next step (JobInterrupted),
        as a job alone stops where the signal finds it, and records itself `interrupted`."""
        with self._cond:
            self._stop_all(signal_name)

    def _stop_all(self, signal_name: str) -> None:
        if self._stop is None:
            self._stop = signal_name
        for k in self._waiting:
            self._results[k] = JobInterrupted(self._stop)
        self._waiting.clear()
        self._cond.notify_all()

    def _run_if_complete(self) -> None:
        if not self._waiting or not self._training <= set(self._waiting):
            return
        members = sorted(self._waiting)
        requests = [self._waiting[k] for k in members]
        self._waiting.clear()
        try:
            outcomes: list[tuple[State, Tensor] | BaseException] = list(
                self._run(tuple(members), requests)
            )
        except BaseException as exc:  # every member of the step fails with it
            outcomes = [exc] * len(members)
        self._results.update(zip(members, outcomes, strict=True))
        self.steps += 1
        self._cond.notify_all()

    def _run(
        self, members: tuple[int, ...], requests: Sequence[_Request]
    ) -> list[tuple[State, Tensor]]:
        """Forward and backward of the members as one model, then each member's own step."""
        packed = self._steps.get(members)
        if packed is None:
            packed = self._steps[members] = PackedStep([r.model for r in requests])
        packed.train(requests[0].model.training)
        hidden = stack_states([r.model.detach_state(r.hidden) for r in requests])
        inputs = torch.stack([r.inputs for r in requests])
        targets = torch.stack([r.targets for r in requests])
        generators = [r.generator for r in requests]
        losses, hidden = packed.forward(range(len(requests)), inputs, targets, hidden, generators)
        for r in requests:
            r.optimizer.zero_grad(set_to_none=True)
        # each member's objective: its mean loss times its own factor (no host-to-device copy)
        sum(loss * r.scale for loss, r in zip(losses, requests, strict=True)).backward()
        for r in requests:
            if r.clip_norm is not None:
                params = [p for p in r.model.parameters() if p.requires_grad]
                torch.nn.utils.clip_grad_norm_(params, r.clip_norm)
            r.optimizer.step()
        losses = losses.detach()
        return [(member_state(hidden, i), losses[i]) for i in range(len(requests))]


class Member:
    """One job's place in a pack: what its trainer calls instead of its own step."""

    def __init__(
        self, pack: Pack, index: int, packed_with: list[str], device: torch.device
    ) -> None:
        self.pack, self.index = pack, index
        self.packed_with = packed_with  # the other members' job directories, for the record
        self.device = device  # the pack's, held by the launcher (one GPU slot for the pack)
        self.generator: torch.Generator | None = None  # its own stream, from its first step

    def stream(self) -> torch.Generator | None:
        """This job's random stream: on its first call, a generator in the state the process's
        has now (called from the job's thread at its first step, when the job alone would draw
        its first mask from it). None on a device without one (MPS: the process's)."""
        if self.generator is None:
            self.generator = process_stream(self.device)
        return self.generator

    def stepper(
        self,
        model: LanguageModel,
        optimizer: torch.optim.Optimizer,
        clip_norm: float | None,
        loss_average: str,
    ) -> StepFn:
        """The trainer's step function for this member's model and optimizer."""

        def step(
            inputs: Tensor,
            targets: Tensor,
            hidden: State,
            mask: Tensor | None,
            num_tokens: int,
        ) -> tuple[State, Tensor]:
            if mask is not None:  # the launcher packs stream data only (one shape per step)
                raise ValueError("a packed job's batches must be stream windows, not padded")
            scale = num_tokens / inputs.shape[0] if loss_average == "time_sum" else 1.0
            request = _Request(
                model, optimizer, clip_norm, scale, inputs, targets, hidden, self.stream()
            )
            return self.pack.step(self.index, request)

        return step


_current: contextvars.ContextVar[Member | None] = contextvars.ContextVar(
    "lmexp_pack_member", default=None
)


def current() -> Member | None:
    """The pack member the job running in this thread is, or None (a job alone)."""
    return _current.get()


def join(member: Member) -> contextvars.Token[Member | None]:
    """Make the job about to run in this thread `member` of its pack."""
    return _current.set(member)
