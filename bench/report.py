"""The bench's table: the figures of one run, as printed by ``make bench``."""

from __future__ import annotations

from typing import Any


def _fmt(value: float | None, width: int, spec: str = ".1f") -> str:
    return f"{'n/a':>{width}}" if value is None else f"{value:>{width}{spec}}"


def cores(run: dict[str, Any]) -> str:
    """``consumer / postgres`` cores busy (the limit's consumer is the bench process)."""
    busy = run.get("cores_busy") or {}
    return f"{busy.get('worker', 0):.2f} / {busy.get('postgres', 0):.2f}"


def table(r: dict[str, Any]) -> str:
    scale = r["scale_out"]
    workers = f"{scale['one_worker_rate']:,} / {scale['two_workers_rate']:,}"
    lim, pipe, rates, lat = r["limit"], r["pipeline"], r["ratio"], r["latency"]
    lines = [
        f"HealthMate bench {r['run_id']}: N={r['n']:,} readings, {r['partitions']} partitions, "
        f"{r['machine']['cpus']} CPUs, Python {r['machine']['python']}",
        "",
        f"{'':26}{'single readings':>18}{'envelopes of ' + str(r['envelope_size']):>20}",
        f"{'limit (readings/s)':26}{lim['single']['rate']:>18,}{lim['envelope']['rate']:>20,}",
        f"{'pipeline (readings/s)':26}{pipe['single']['rate']:>18,}{pipe['envelope']['rate']:>20,}",
        f"{'pipeline / limit':26}{rates['single']:>18.2f}{rates['envelope']:>20.2f}",
        f"{'Open mHealth (points/s)':26}{pipe['omh']['rate']:>18,}{'(1 reading each)':>20}",
        f"{'pipeline seconds':26}{pipe['single']['seconds']:>18.2f}{pipe['envelope']['seconds']:>20.2f}",
        f"{'worker peak RSS (MB)':26}{pipe['single']['peak_rss_mb']:>18.0f}"
        f"{pipe['envelope']['peak_rss_mb']:>20.0f}",
        f"{'worker CPU us/reading':26}{_fmt(pipe['single']['cpu_us_per_reading'], 18)}"
        f"{_fmt(pipe['envelope']['cpu_us_per_reading'], 20)}",
        f"{'limit CPU us/reading':26}{_fmt(lim['single']['cpu_us_per_reading'], 18)}"
        f"{_fmt(lim['envelope']['cpu_us_per_reading'], 20)}",
        f"{'worker / limit CPU':26}{_fmt(r['cpu_ratio']['single'], 18, '.2f')}"
        f"{_fmt(r['cpu_ratio']['envelope'], 20, '.2f')}",
        f"{'cores busy: worker / pg':26}{cores(pipe['single']):>18}{cores(pipe['envelope']):>20}",
        f"{'  limit: consumer / pg':26}{cores(lim['single']):>18}{cores(lim['envelope']):>20}",
        f"{'1 / 2 workers, one group':26}" + workers.rjust(18) + f"{'(x' + str(scale['speedup']) + ')':>20}",
        "",
        f"latency produce->commit at {lat['offered_rate']:,} readings/s offered "
        f"({lat['achieved_rate']:,} achieved, {lat['readings']:,} single readings):",
        f"  p50 {lat['p50_ms']} ms   p95 {lat['p95_ms']} ms   p99 {lat['p99_ms']} ms"
        f"   max {lat['max_ms']} ms",
        "",
        "targets: worker CPU/reading <= 2x the limit's and throughput >= 0.8x the limit (both forms),",
        "         p99 < 300 ms at half load, peak RSS < 300 MB",
    ]
    return "\n".join(lines)


