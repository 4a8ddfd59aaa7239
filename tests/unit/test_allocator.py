"""cpu_allocator: glibc keeps large freed blocks in its heap when tuned, unmaps them otherwise."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lmexp.config import TrainConfig
from lmexp.runtime import allocator

# In a fresh interpreter: allocate and free a 24 MiB tensor, then report how much free memory
# the heap holds (glibc mallinfo2().fordblks). The block is above glibc's default mmap
# threshold, so with the system settings it is unmapped on free; tuned, it stays in the heap.
PROBE = """
import ctypes, sys, torch
from lmexp.runtime import allocator
if sys.argv[1] == "tuned":
    assert allocator.configure("tuned")
NAMES = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in NAMES.split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
x = torch.ones(6 * 2**20)  # 24 MiB
del x
print(libc.mallinfo2().fordblks)
"""


def _free_heap_after_free(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(allocator._glibc() is None, reason="glibc only")
def test_tuned_allocator_keeps_a_large_freed_block_in_the_heap() -> None:
    block = 24 * 2**20
    assert _free_heap_after_free("tuned") >= block
    assert _free_heap_after_free("system") < block


def test_system_changes_nothing_and_unknown_names_are_refused() -> None:
    assert allocator.configure("system") is False
    with pytest.raises(ValueError, match="choose from"):
        allocator.configure("jemalloc")


def test_unknown_cpu_allocator_is_refused_by_the_config() -> None:
    with pytest.raises(
        ValueError, match=r"cpu_allocator='fast' unknown; choose from \['tuned', 'system'\]"
    ):
        TrainConfig(cpu_allocator="fast")
