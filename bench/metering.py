"""Bench metering: CPU seconds of processes, read from /proc (peak RSS: pipeline_support.vm_hwm_mb)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process, 0.0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pids_of(pattern: str) -> list[int]:
    """Processes whose command line contains ``pattern`` (for CPU accounting only)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if pattern in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def machine_cpu() -> dict[str, float]:
    """Busy and stolen CPU seconds of the whole machine (``/proc/stat``)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    idle = ticks[3] + ticks[4]  # idle + iowait
    steal = ticks[7] if len(ticks) > 7 else 0
    return {"machine": (sum(ticks[:8]) - idle - steal) / hz, "steal": steal / hz}


class CpuMeter:
    """Cores used between two marks by the worker (or the bench process for the limit), all
    PostgreSQL processes, the Kafka broker, the whole machine (``machine``, so ``other`` =
    load that is not ours) and the hypervisor (``steal``).

    Processes are looked up at every sample, so backends that start later are counted.
    """

    def __init__(self, worker_pid: int) -> None:
        self.worker_pid = worker_pid
        self.start: tuple[float, dict[str, dict[int, float]], dict[str, float]] | None = None

    def sample(self) -> tuple[float, dict[str, dict[int, float]], dict[str, float]]:
        groups = {"worker": [self.worker_pid], "postgres": pids_of("postgres"),
                  "kafka": pids_of("kafka.Kafka"),
                  "bench": [os.getpid()] if self.worker_pid != os.getpid() else []}
        return (time.monotonic(), {k: {p: cpu_seconds(p) for p in pids} for k, pids in groups.items()},
                machine_cpu())

    def mark(self) -> None:
        self.start = self.sample()

    def busy(self) -> dict[str, float]:
        """Cores busy per group since :meth:`mark` (1.0 = one core all the time); empty
        if not marked or marked less than 0.5 s ago."""
        if self.start is None:
            return {}
        (t0, c0, m0), (t1, c1, m1) = self.start, self.sample()
        dt = t1 - t0
        if dt < 0.5:
            return {}  # too short to say (e.g. the whole run was one transaction)
        out = {k: sum(cpu - c0[k].get(pid, 0.0) for pid, cpu in c1[k].items()) / dt for k in c1}
        out.update({k: (m1[k] - m0[k]) / dt for k in m1})
        out["other"] = out["machine"] - sum(out[k] for k in c1)
        return {**{k: round(v, 2) for k, v in out.items()}, "seconds": round(dt, 3),
                "worker_cpu_s": round(out["worker"] * dt, 3)}


def cpu_us_per_reading(busy: dict[str, float], readings: int) -> float | None:
    """CPU microseconds the consumer spent per reading over the metered interval (``/proc``)."""
    if not busy or readings <= 0:
        return None
    return round(busy["worker_cpu_s"] / readings * 1e6, 1)


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None
