"""What a benchmark's numbers were measured on: written into every result file."""

import os
import platform
from pathlib import Path


def describe(**versions: str) -> dict:
    """CPU model, CPUs, platform, Python, plus the given tool versions."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpus_online": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)),  # the CPUs this process may use
        "platform": platform.platform(),
        "python": platform.python_version(),
        **versions,
    }
