"""Machine facts (placeholder until the machine-facts module lands)."""

from __future__ import annotations

import os


def physical_cores() -> int:
    """Physical CPU cores available to this process (SMT siblings counted once), at least 1."""
    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1
    seen = set()
    for cpu in cpus:
        try:
            with open(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list") as fh:
                seen.add(fh.read().strip())
        except OSError:
            seen.add(str(cpu))
    return max(1, len(seen))
