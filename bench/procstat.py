"""What the kernel says about a process and the machine: /proc, read directly."""

import os
import platform
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def parse_cpu_ticks(stat: str) -> int:
    """utime + stime (clock ticks, every thread included) from a /proc/<pid>/stat line."""
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def parse_rss_kib(status: str) -> int:
    """VmRSS in KiB from /proc/<pid>/status."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ValueError("no VmRSS line (is the process a zombie?)")


def cpu_seconds(pid: int) -> float:
    return parse_cpu_ticks(Path(f"/proc/{pid}/stat").read_text()) / CLOCK_TICKS


def rss_kib(pid: int) -> int:
    return parse_rss_kib(Path(f"/proc/{pid}/status").read_text())


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine() -> dict[str, str]:
    """Cores, CPU model, memory, kernel and Python of this machine."""
    cpu_model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    mem_kib = parse_meminfo_total(Path("/proc/meminfo").read_text())
    return {
        "cores": str(os.cpu_count()),
        "cpu": cpu_model,
        "memory": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def parse_meminfo_total(meminfo: str) -> int:
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    raise ValueError("no MemTotal line")
