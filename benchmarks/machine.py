"""What machine a benchmark ran on, for the line BENCHMARKS.md keeps beside each figure."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (Linux), else the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> str:
    """CPU model, cores, Python and platform in one line."""
    return f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}"
