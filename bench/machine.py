"""The machine and its processes, for the benchmarks' reports: what it is (cores, CPU, memory, versions),
and what /proc says of a process (CPU seconds, resident memory)."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def proc_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def machine_facts() -> dict[str, Any]:
    import temporalio

    from client.local_server import temporal_binary

    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    try:
        cli = subprocess.run([str(temporal_binary()), "--version"], capture_output=True, text=True,
                             timeout=20).stdout.strip()
    except Exception as exc:  # noqa: BLE001
        cli = f"unknown ({exc})"
    return {"cores": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kib / 2**20, 1),
            "kernel": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            "temporalio": temporalio.__version__, "temporal_cli": cli,
            "date": datetime.now(UTC).isoformat(timespec="seconds")}
