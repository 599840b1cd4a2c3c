"""The end-of-run summary: jobs ok/failed, throughput, mean stage times, peak VRAM, and the mean of each quality
measure per value of each swept parameter."""

from __future__ import annotations

from statistics import mean
from typing import Any

from svd_batch.batch.plan import format_duration
from svd_batch.batch.records import QUALITY_COLUMNS, TIME_COLUMNS, JobRecord


def summarize(records: list[JobRecord], skipped: int, wall_s: float, model_load_s: float) -> dict[str, Any]:
    ok = [r for r in records if r.ok]
    summary: dict[str, Any] = {
        "jobs_run": len(records),
        "jobs_ok": len(ok),
        "jobs_failed": len(records) - len(ok),
        "jobs_skipped": skipped,
        "wall_s": round(wall_s, 2),
        "model_load_s": round(model_load_s, 2),
        "videos_per_hour": round(len(ok) / wall_s * 3600, 1) if ok and wall_s > 0 else 0.0,
    }
    for column in TIME_COLUMNS:
        values = [r.times[column] for r in ok if column in r.times]
        summary[f"mean_{column}"] = round(mean(values), 3) if values else None
    peaks = [r.peak_vram_gib for r in ok if r.peak_vram_gib is not None]
    summary["peak_vram_gib"] = round(max(peaks), 2) if peaks else None
    summary["quality_by_parameter"] = quality_by_parameter(ok)
    return summary


def quality_by_parameter(records: list[JobRecord]) -> dict[str, dict[str, dict[str, float]]]:
    """{parameter: {value: {measure: mean}}} for each parameter that takes several values among `records`."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    names = sorted({name for r in records for name in r.params})
    for name in names:
        values = sorted({r.params.get(name) for r in records}, key=str)
        if len(values) < 2:
            continue
        table[name] = {}
        for value in values:
            group = [r for r in records if r.params.get(name) == value]
            means = {m: round(mean(r.quality[m] for r in group if m in r.quality), 3) for m in QUALITY_COLUMNS
                     if any(m in r.quality for r in group)}  # fmt: skip
            if means:
                table[name][str(value)] = means
    return {name: by_value for name, by_value in table.items() if by_value}


def format_summary(summary: dict[str, Any], failures: list[JobRecord]) -> str:
    lines = [
        "summary",
        f"  jobs        {summary['jobs_ok']} ok, {summary['jobs_failed']} failed, "
        f"{summary['jobs_skipped']} already done",
        f"  wall time   {format_duration(summary['wall_s'])} (model load {summary['model_load_s']:.1f} s)",
        f"  throughput  {summary['videos_per_hour']} videos/hour",
    ]
    stages = [(c.removeprefix("time_").removesuffix("_s"), summary[f"mean_{c}"]) for c in TIME_COLUMNS]
    if any(v is not None for _, v in stages):
        lines.append(
            "  mean stage  " + "  ".join(f"{name} {value:.2f}s" for name, value in stages if value is not None)
        )
    peak = summary["peak_vram_gib"]
    lines.append(f"  peak VRAM   {'n/a (CPU)' if peak is None else f'{peak:.2f} GiB'}")
    for name, by_value in list(summary.get("quality_by_parameter", {}).items())[:4]:
        for value, means in list(by_value.items())[:8]:
            measured = "  ".join(f"{m} {v:.3g}" for m, v in means.items())
            lines.append(f"  quality     {name}={value}: {measured}")
    for record in failures[:10]:
        lines.append(f"  FAILED {record.job_id} ({record.id}): {record.error.splitlines()[0] if record.error else ''}")
    if len(failures) > 10:
        lines.append(f"  ... and {len(failures) - 10} more failures: see index.csv")
    return "\n".join(lines)
