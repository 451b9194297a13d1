"""Memory figures of the GCM model runner: the process's resident set, its high-water mark, and two glibc
malloc settings that change what those figures mean. Standard library only (``/proc``, ``resource``,
``ctypes``); used by the run loop of `contracts.gcm.run` for both backends alike.

The runner reports the peak resident set above a baseline taken after setup and the first step. On Linux the
kernel's high-water mark is reset (``echo 5 > /proc/self/clear_refs``, `reset_peak_rss`) at the baseline and
read (``VmHWM``, `peak_rss_bytes`) at the end; elsewhere ``resource.getrusage`` gives a process-lifetime peak
and the report says it was not reset. What the figure means depends on the allocator:

- default (glibc's dynamic mmap threshold): memory that step 1 touched and freed stays in the heap and is
  part of the baseline, so the figure is the allocator's *growth* after warm-up, not the working set.
  NumPy's ~40 field-sized temporaries per step are mostly hidden this way; XLA's single temp block (JAX)
  lands in whichever per-thread malloc arena runs the step and fragments, so its figure wanders between
  runs (measured at 481x960 float64: 32 to 106 MiB for the same program, NumPy a steady 24.7 MiB).
- `exact_rss_malloc` (``--exact-rss``): every allocation of 1 MiB or more is its own mapping, returned on
  free, so RSS follows live memory and the figure is the step's real working set (481x960 float64,
  measured: NumPy 141 MiB, JAX 10 MiB). Use it to compare memory; its NumPy step times include the page
  faults of every temporary and are not comparable with the default run's.
- `tune_malloc` (``--tune-malloc``): one arena, no mmap, no trimming: freed memory is kept for reuse, so
  large temporaries stop costing page faults every step, and the peak counts memory touched once.

`malloc_totals` (glibc's ``mallinfo2``, summed over all arenas) splits the allocator's figures into memory in
use and freed memory that malloc keeps in its heaps. The runner reports how both changed from the baseline to
the end of the loop, so a growth of the resident set can be told apart from memory the program still holds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import resource
import sys
import time
from collections.abc import Callable
from typing import Any


def _status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def current_rss_bytes() -> int:
    kib = _status_kib("VmRSS")
    if kib is not None:
        return kib * 1024
    return _getrusage_peak_bytes()  # no /proc: the best available figure


def settled_rss_bytes(
    polls: int = 20, interval_s: float = 0.001, sleep: Callable[[float], None] = time.sleep
) -> int:
    """The resident set once it stops shrinking: the lowest of up to ``polls`` reads ``interval_s`` apart,
    stopping at the first read that is not lower than the one before. A JAX step's result is ready before
    XLA's worker thread has freed that step's temporary block, so a single read right after
    ``block_until_ready`` sometimes still counted the block in the baseline (measured at 481x960 float64
    with --exact-rss: 0.0 MiB above baseline in one run of four, 14.7-17.8 MiB in the others)."""
    low = current_rss_bytes()
    for _ in range(polls):
        sleep(interval_s)
        now = current_rss_bytes()
        if now >= low:
            break
        low = now
    return low


def _getrusage_peak_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's resident-set high-water mark (Linux); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    kib = _status_kib("VmHWM")
    return kib * 1024 if kib is not None else _getrusage_peak_bytes()


def _glibc(function: str) -> Any:
    """glibc's ``function`` through ctypes, or None off Linux or where the C library lacks it."""
    name = ctypes.util.find_library("c")
    if not name or not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(name), function)
    except (OSError, AttributeError):
        return None


def tune_malloc() -> bool:
    """glibc only: one malloc arena, no mmap for large blocks, no trimming. Freed memory then stays in the
    process and is reused, so large per-step temporaries (XLA's CPU temp buffer above 32 MiB, NumPy's big
    arrays) stop costing page faults every step. Call it before JAX starts its threads. Peak-memory figures
    change meaning: memory touched once stays resident. Returns False where it is not available."""
    mallopt = _glibc("mallopt")
    if mallopt is None:
        return False
    m_trim_threshold, m_mmap_max, m_arena_max = -1, -4, -8
    return bool(mallopt(m_arena_max, 1) and mallopt(m_mmap_max, 0) and mallopt(m_trim_threshold, 2**31 - 1))


def exact_rss_malloc(threshold: int = 2**20) -> bool:
    """glibc only: serve every allocation of ``threshold`` bytes or more by its own ``mmap`` and unmap it on
    free (a fixed M_MMAP_THRESHOLD also turns off glibc's dynamic threshold). The resident set then follows
    live memory, so the peak above baseline is the step's real working set for every backend alike, instead
    of the allocator's growth after warm-up (see the module docstring). Call it before JAX starts its
    threads. Returns False where it is not available."""
    mallopt = _glibc("mallopt")
    m_mmap_threshold = -3
    return mallopt is not None and bool(mallopt(m_mmap_threshold, int(threshold)))


@dataclasses.dataclass(frozen=True)
class MallocTotals:
    """glibc malloc's totals over all its arenas (``mallinfo2``)."""

    in_use_bytes: int  # allocated and not yet freed: heap chunks (uordblks) plus mmapped blocks (hblkhd)
    free_held_bytes: int  # freed and kept in malloc's heaps for reuse (fordblks); resident once touched


class _Mallinfo2(ctypes.Structure):
    _fields_ = [  # the layout of glibc's struct mallinfo2: ten size_t
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def malloc_totals() -> MallocTotals | None:
    """The allocator's memory in use and freed-but-held memory, or None where glibc's ``mallinfo2`` (2.33 and
    later) is not available. Read through ctypes: no maintained Python package exposes malloc statistics."""
    mallinfo2 = _glibc("mallinfo2")
    if mallinfo2 is None:
        return None
    mallinfo2.restype = _Mallinfo2
    info = mallinfo2()
    return MallocTotals(in_use_bytes=int(info.uordblks + info.hblkhd), free_held_bytes=int(info.fordblks))


__all__ = [
    "MallocTotals",
    "current_rss_bytes",
    "exact_rss_malloc",
    "malloc_totals",
    "peak_rss_bytes",
    "reset_peak_rss",
    "settled_rss_bytes",
    "tune_malloc",
]
