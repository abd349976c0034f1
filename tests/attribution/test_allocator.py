"""A freed large tensor goes back to the system once glibc's mmap threshold is fixed."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest

from salience.attribution.compute import allocator

SCRIPT = """
import contextlib, sys, torch
from salience.attribution.compute.allocator import large_blocks_mapped
def resident():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
x = torch.ones(4 << 20)  # 16 MiB, mapped; freeing it raises glibc's dynamic threshold to 16 MiB
del x
with large_blocks_mapped() if sys.argv[1] == "inside" else contextlib.nullcontext():
    before = resident()
    block = torch.ones(4 << 20)  # 16 MiB again: from the heap where the threshold rose
    pin = torch.ones(64 << 10)  # 256 KiB above it: the heap's top cannot be trimmed
    del block
    print(resident() - before)
"""


def glibc() -> bool:
    try:
        return sys.platform.startswith("linux") and hasattr(ctypes.CDLL(None), "gnu_get_libc_version")
    except OSError:
        return False


def kept_after_free(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, env=env, check=True)
    return int(done.stdout.strip())


@pytest.mark.skipif(not glibc(), reason="the dynamic mmap threshold is glibc's")
def test_a_freed_block_leaves_resident_memory_only_with_the_dynamic_threshold(margin) -> None:
    # what made long backward passes peak twice as high
    margin("resident MiB after a free, dynamic threshold", kept_after_free("outside") / 2**20, above=12)
    margin("resident MiB after a free, low threshold", kept_after_free("inside") / 2**20, below=4)


def test_the_threshold_is_low_inside_only_and_left_to_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    set_to: list[int] = []
    monkeypatch.setattr(allocator, "_mallopt", lambda: lambda option, size: set_to.append(size) or 1)
    with allocator.large_blocks_mapped(), allocator.large_blocks_mapped():
        assert set_to == [allocator.LONG_PASS_THRESHOLD]
    assert set_to == [allocator.LONG_PASS_THRESHOLD, allocator.SETTLED_THRESHOLD]
    monkeypatch.undo()
    allocator._mallopt.cache_clear()
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    try:
        assert not allocator.mmap_threshold(allocator.LONG_PASS_THRESHOLD)
    finally:
        allocator._mallopt.cache_clear()
