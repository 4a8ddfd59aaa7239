"""The whole training step captured once in a CUDA graph and replayed, instead of launched op by op.

A from-scratch recurrent step at batch 20 is ~35 x layers small kernels forward and as many
backward: on a GPU it is bound by the CPU launching them, not by arithmetic. A CUDA graph
records every kernel of one step (forward, backward, clipping, optimizer step) once and replays
the recording with a single launch. The recording is of fixed tensors at fixed addresses, so a
step replays only for windows of the shape it was captured with, and with the learning rate it
was captured at (the optimizer bakes a float lr into its kernels):

- each new (window shape, learning rates) key gets `WARMUP` eager steps on a side stream (real
  training steps on real batches: lazy state such as Adam's moments and cuBLAS handles is
  created outside the recording, as capture requires), then the next step is captured and
  replayed; a schedule that changes the lr once per epoch recaptures once per epoch;
- a window of another shape (the shorter last window of an epoch) runs eagerly;
- inputs, targets and the carried hidden state are copied into the graph's own tensors before
  each replay; the state and the loss it returns are the graph's outputs, valid until the
  next replay (the trainer reads the loss into its running sum at once and feeds the state back).

The eager step is the reference: `tests/cuda/` checks the graph path ends at the same weights.
Where it cannot run (no CUDA), `GraphedStep` is not built; see `graph_wanted`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable

import torch
from torch import Tensor

from lmexp.models.base import State
from lmexp.validation import InputError

log = logging.getLogger(__name__)

WARMUP = 3  # eager steps before each capture (PyTorch's whole-network capture example uses 3)
GRAPH_CHOICES = ("auto", "on", "off")

Step = Callable[[Tensor, Tensor, State], tuple[State, Tensor]]


def graph_wanted(choice: str, device: torch.device, mode: str, compiled: bool) -> bool:
    """Whether a job captures its step: `cuda_graph` resolved against what the job runs on.

    `auto` captures on CUDA for stream-mode data (every full window has one shape) without
    `compile`; `on` insists and names what stands in the way; `off` keeps the eager step.
    Raises before any data is loaded.
    """
    if choice not in GRAPH_CHOICES:
        raise ValueError(f"cuda_graph={choice!r} unknown; choose from {list(GRAPH_CHOICES)}")
    obstacles = []
    if device.type != "cuda":
        obstacles.append(f"device is {device} (CUDA graphs need device=cuda)")
    if mode != "stream":
        obstacles.append(f"data.mode={mode} batches vary in shape (use data.mode=stream)")
    if compiled:
        obstacles.append("compile=true captures its own graphs (use compile=false)")
    if choice == "on" and obstacles:
        raise InputError("cuda_graph=on cannot capture: " + "; ".join(obstacles))
    return choice != "off" and not obstacles


def _tensors(state: State) -> tuple[Tensor, ...]:
    if state is None:
        return ()
    return tuple(state) if isinstance(state, (tuple, list)) else (state,)


def _clone(state: State) -> State:
    if state is None or isinstance(state, Tensor):
        return None if state is None else state.detach().clone()
    return tuple(t.detach().clone() for t in state)


class CudaCapture:
    """Records a step in a CUDA graph (PyTorch's whole-network capture recipe)."""

    def __init__(self) -> None:
        self.pool = None  # the graphs' memory pool, shared by recaptures
        self._side: torch.cuda.Stream | None = None

    def warm(self, run: Callable[[], tuple[State, Tensor]], device: torch.device):
        """Run an eager step on a side stream, as capture's warm-up must."""
        if self._side is None:
            self._side = torch.cuda.Stream(device)
        current = torch.cuda.current_stream(device)
        self._side.wait_stream(current)
        with torch.cuda.stream(self._side):
            out = run()
        current.wait_stream(self._side)
        return out

    def capture(
        self, run: Callable[[], tuple[State, Tensor]]
    ) -> Callable[[], tuple[State, Tensor]]:
        """Record `run` once; the returned callable replays it and gives its (static) outputs."""
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            outputs = run()
        self.pool = graph.pool()

        def replay() -> tuple[State, Tensor]:
            graph.replay()
            return outputs

        return replay


class GraphedStep:
    """Replays `step(inputs, targets, hidden) -> (hidden, loss)` from a CUDA graph.

    `step` must be the complete eager step: it zeroes the gradients, runs forward and
    backward, clips and steps the optimizer, reading nothing from the host. `optimizer` is
    the one `step` uses (its learning rates are part of the capture key). `backend` records
    and replays (`CudaCapture`); the tests drive the same bookkeeping with an eager one.
    """

    def __init__(
        self,
        step: Step,
        optimizer: torch.optim.Optimizer,
        warmup: int = WARMUP,
        backend: CudaCapture | None = None,
    ) -> None:
        self.step, self.optimizer, self.warmup = step, optimizer, warmup
        self.backend = backend or CudaCapture()
        self.key: Hashable | None = None
        self.pending = warmup  # eager warm-up steps still to run before capturing `key`
        self.failed = False  # a capture raised: eager for the rest of the run
        self.captures = 0
        self._replay: Callable[[], tuple[State, Tensor]] | None = None
        self._static: tuple[Tensor, Tensor, State] | None = None

    def _key(self, inputs: Tensor) -> Hashable:
        return tuple(inputs.shape), tuple(float(g["lr"]) for g in self.optimizer.param_groups)

    def __call__(self, inputs: Tensor, targets: Tensor, hidden: State) -> tuple[State, Tensor]:
        if self.failed:
            return self.step(inputs, targets, hidden)
        key = self._key(inputs)
        if key == self.key and self._replay is not None:
            return self._run(inputs, targets, hidden)
        if self.key is not None and key[0] != self.key[0]:
            return self.step(inputs, targets, hidden)  # an odd-shaped window: eager
        if key != self.key:  # the first window, or a new learning rate: warm up, then capture
            self._replay = self._static = None
            self.key, self.pending = key, self.warmup if self.captures == 0 else 1
        if self.pending > 0:
            self.pending -= 1
            return self.backend.warm(lambda: self.step(inputs, targets, hidden), inputs.device)
        try:
            self._capture(inputs, targets, hidden)
        except Exception as exc:  # noqa: BLE001  (the eager step is always right)
            self._replay = self._static = None
            self.failed = True
            log.warning("CUDA graph capture failed, training eagerly: %r", exc)
            return self.step(inputs, targets, hidden)
        return self._run(inputs, targets, hidden)

    def _capture(self, inputs: Tensor, targets: Tensor, hidden: State) -> None:
        static = (inputs.clone(), targets.clone(), _clone(hidden))
        self.optimizer.zero_grad(set_to_none=True)  # gradients are allocated inside the graph
        self._replay = self.backend.capture(lambda: self.step(*static))
        self._static = static
        self.captures += 1
        log.info("captured the training step in a CUDA graph (window %s)", tuple(inputs.shape))

    def _run(self, inputs: Tensor, targets: Tensor, hidden: State) -> tuple[State, Tensor]:
        """Copy this window and the carried state into the graph's tensors, then replay."""
        assert self._replay is not None and self._static is not None
        static_in, static_tg, static_h = self._static
        static_in.copy_(inputs)
        static_tg.copy_(targets)
        for dst, src in zip(_tensors(static_h), _tensors(hidden), strict=True):
            if dst.data_ptr() != src.data_ptr():
                dst.copy_(src)
        return self._replay()
