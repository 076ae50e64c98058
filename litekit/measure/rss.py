"""The resident memory of this process (Linux /proc), for CPU measurements.

On the CPU a training step's memory is what the machine must hold: the process's resident
set size (RSS). Its peak can be reset on Linux (/proc/self/clear_refs), so one process can
read the peak of a few steps; glibc is told to return freed tensors to the system at once,
so the resident size is live data and one step's memory cannot hide in another's.
"""

from __future__ import annotations

import os
import resource
import sys


def current_rss() -> int:
    """Resident set size of this process now, in bytes (Linux /proc; else the peak)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return peak_rss()


def peak_rss() -> int:
    """Peak resident set size of this process, in bytes: Linux's VmHWM (which
    `reset_peak_rss` can reset), else ``getrusage``'s high-water mark since start."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # KiB on Linux


def reset_peak_rss() -> bool:
    """Reset the peak RSS to the current RSS (Linux >= 4.0); False where impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def trim_heap() -> None:
    """Give freed heap memory back to the system (glibc), so the resident size is live data."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def configure_allocator() -> None:
    """In a measuring process: large allocations always use mmap (glibc), so freed tensors
    leave the resident set at once and one step's memory cannot hide in another's."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 256 * 1024)  # M_MMAP_THRESHOLD: fixed, no dynamic growth
        libc.mallopt(-1, 256 * 1024)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass
