"""The server's malloc setting (app/allocator.py): a large block freed goes back to the system."""

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from app import allocator

ROOT = Path(__file__).resolve().parent.parent

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc setting")

# Frees an 8 MiB block (glibc then serves blocks up to 8 MiB from its heap, by default), allocates
# 1 MiB and prints whether that block got its own mapping, as mallinfo2 counts them.
PROBE = """
import ctypes, sys
from app.allocator import keep_large_blocks_returnable

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
applied = keep_large_blocks_returnable() if sys.argv[1] == "fix" else False
freed = bytearray(8 * 2**20)
del freed
before = libc.mallinfo2().hblkhd
block = bytearray(2**20)
print(applied, libc.mallinfo2().hblkhd - before >= 2**20)
"""


def probe(mode: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"} | env
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@glibc_only
def test_a_large_block_is_mapped_on_its_own_once_the_threshold_is_fixed():
    assert probe("fix") == "True True"


@glibc_only
def test_without_the_setting_glibc_serves_it_from_the_heap_after_a_larger_free():
    # The behaviour the setting exists to stop (and what makes the test above able to fail).
    assert probe("leave") == "False False"


@glibc_only
def test_an_operator_setting_of_glibc_own_variable_is_left_to_decide():
    assert probe("fix", MALLOC_MMAP_THRESHOLD_="4194304") == "False False"


def test_nothing_is_set_off_glibc(monkeypatch):
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.setattr(platform, "libc_ver", lambda *args: ("", ""))  # musl, as in Alpine
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda *args: pytest.fail("libc loaded off glibc"))
    assert allocator.keep_large_blocks_returnable() is False


@glibc_only
def test_the_setting_applies_in_this_process_too(monkeypatch):
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert allocator.keep_large_blocks_returnable() is True
