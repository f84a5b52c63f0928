"""A process's footprint from /proc: what a fault test watches to prove a client cannot grow it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Footprint:
    rss_kb: int
    threads: int
    fds: int
    cpu_sec: float  # user + system since the process started

    def __str__(self) -> str:
        return f"RSS {self.rss_kb / 1024:.1f} MB, {self.threads} threads, {self.fds} fds, CPU {self.cpu_sec:.2f} s"


def footprint(pid: int) -> Footprint:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return Footprint(rss_kb=int(status["VmRSS"].split()[0]), threads=int(status["Threads"]),
                     fds=len(os.listdir(f"/proc/{pid}/fd")), cpu_sec=(int(stat[11]) + int(stat[12])) / _TICKS)
