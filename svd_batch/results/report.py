"""Seeing a sweep at a glance: comparison grid videos per image and a self-contained HTML gallery, made from an
output folder's index (after a run, or later without the GPU: `python -m svd_batch.report output_dir=DIR`)."""

from __future__ import annotations

import html
import io
import json
import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from svd_batch.batch.plan import Job
from svd_batch.batch.records import INDEX_COLUMNS, INDEX_NAME, QUALITY_COLUMNS, TIME_COLUMNS, JobRecord
from svd_batch.config import REPORT_AXES, ExportConfig, ExportFormat, ReportConfig
from svd_batch.results.export import export_frames, partial_name, read_frames

log = logging.getLogger(__name__)

LABEL_HEIGHT = 16
SHORT_NAMES = {  # grid labels must fit small tiles
    "num_frames": "frames", "num_inference_steps": "steps", "motion_bucket_id": "motion",
    "noise_aug_strength": "noise", "min_guidance_scale": "gmin", "max_guidance_scale": "gmax",
    "decode_chunk_size": "chunk", "hardware": "hw", "segments": "seg", "color_match": "color",
}  # fmt: skip
GRIDS_DIR = "grids"
LAYOUTS_DIR = ".layouts"  # under GRIDS_DIR: how each grid was made (GridBuilder, make_grid)
GALLERY_NAME = "index.html"


def read_index(output_dir: Path) -> pd.DataFrame:
    path = output_dir / INDEX_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: point output_dir at a folder svd-batch has written")
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def swept_parameters(index: pd.DataFrame) -> list[str]:
    """Parameters (and, from a multirun, the model and hardware profile) that take more than one value among the ok
    jobs, most values first."""
    ok = index[index.status == "ok"]
    counts = {name: ok[name].nunique() for name in REPORT_AXES if name in ok}
    return sorted((n for n, c in counts.items() if c > 1), key=lambda n: (-counts[n], REPORT_AXES.index(n)))


def grid_axes(index: pd.DataFrame, cfg: ReportConfig) -> tuple[str | None, str | None]:
    swept = swept_parameters(index)
    rows = cfg.rows or (swept[0] if swept else None)
    cols = cfg.cols or next((n for n in swept if n != rows), None)
    return rows, cols


def grid_groups(index: pd.DataFrame, cfg: ReportConfig) -> tuple[str | None, str | None, dict[str, pd.DataFrame]]:
    """The grids an index makes: their row and column parameters and, by grid name, the ok jobs of each (one grid
    per image and setting of the other swept parameters)."""
    rows, cols = grid_axes(index, cfg)
    if rows is None:
        return None, None, {}
    ok = index[index.status == "ok"]
    fixed = [n for n in swept_parameters(index) if n not in (rows, cols)]
    groups = {}
    for key, group in ok.groupby(["id", *fixed], sort=True):
        key = key if isinstance(key, tuple) else (key,)
        name = "__".join([str(key[0]), *(f"{n}-{v}" for n, v in zip(fixed, key[1:], strict=True))])
        groups[re.sub(r"[^\w.=-]+", "_", name)] = group  # a model identity may hold '/' and '@'
    return rows, cols, groups


def comparison_grids(output_dir: Path, cfg: ReportConfig, export: ExportConfig) -> list[Path]:
    """One video per image (and per setting of the other swept parameters) tiling the sweep: rows x cols, each
    tile labelled with its values, all tiles' frames in step. A grid already made of the same videos (by GridBuilder,
    while the run went on) is kept; grids this index no longer makes are removed."""
    rows, cols, groups = grid_groups(read_index(output_dir), cfg)
    grids = [make_grid(output_dir, name, group, rows, cols, cfg, export) for name, group in groups.items()]
    for layout in (output_dir / GRIDS_DIR / LAYOUTS_DIR).glob("*.json"):
        grid = output_dir / GRIDS_DIR / layout.stem
        if grid not in grids:  # e.g. made early, before a failed job took its setting out of the sweep
            grid.unlink(missing_ok=True)
            layout.unlink(missing_ok=True)
    return grids


def make_grid(
    output_dir: Path, name: str, group: pd.DataFrame, rows: str, cols: str | None, cfg: ReportConfig,
    export: ExportConfig,
) -> Path:  # fmt: skip
    """The grid video of `group`'s videos, unless the one on disk was made of the same videos the same way."""
    fmt = ExportFormat.mp4 if export.format is ExportFormat.png else export.format  # a grid is a video
    target = output_dir / GRIDS_DIR / f"{name}.{fmt.value}"
    grid_export = ExportConfig(format=fmt, fps=export.fps, crf=export.crf)
    layout = {"rows": rows, "cols": cols, "max_tile_width": cfg.max_tile_width, "fps": export.fps, "crf": export.crf,
              "videos": sorted(group.output)}  # fmt: skip
    layout_path = output_dir / GRIDS_DIR / LAYOUTS_DIR / f"{target.name}.json"
    if _made_as(target, layout_path, layout, [output_dir / video for video in group.output]):
        return target
    export_frames(tile_videos(output_dir, group, rows, cols, cfg.max_tile_width), target, grid_export)
    layout_path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_name(layout_path)
    partial.write_text(json.dumps(layout))
    os.replace(partial, layout_path)
    return target


def _made_as(target: Path, layout_path: Path, layout: dict, videos: list[Path]) -> bool:
    """Whether `target` exists, was made with `layout`, and is newer than each of its videos (a job rendered again
    replaces its video)."""
    try:
        made = json.loads(layout_path.read_text()) == layout
        return made and target.stat().st_mtime >= max(video.stat().st_mtime for video in videos)
    except (OSError, ValueError):
        return False


class GridBuilder:
    """Makes each comparison grid as soon as this run has recorded all of its jobs, on a thread of its own while the
    next videos render: a long sweep's grids appear as it goes, and its end makes only the last ones (the report
    keeps the grids already made of the same videos). The layout is the one the finished plan will have: the
    folder's index when the run started, this run's records, and the plan's jobs not yet recorded as they are
    planned. A grid with a job that another worker renders is left to the report (this run does not see it done)."""

    def __init__(
        self, root: Path, cfg: ReportConfig, export: ExportConfig, index: pd.DataFrame, jobs: list[Job], hardware: str
    ):
        self.root, self.cfg, self.export = root, cfg, export
        planned = [JobRecord(j.job_id, j.item_id, j.image, "ok", j.params_dict(), j.model, hardware) for j in jobs]
        self.rows = {row["job_id"]: row for row in index.to_dict("records")}  # by job, as the index will have them
        self.pending = {record.job_id for record in planned}
        self.rows.update((record.job_id, record.row()) for record in planned)
        self.started: set[str] = set()  # grid names
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="grids")  # the only thread that reads the state above

    def job_recorded(self, record: JobRecord) -> None:
        """Called once a job is journalled (ok or failed), on the thread that journalled it."""
        self.pool.submit(self._recorded, record)

    def _recorded(self, record: JobRecord) -> None:
        self.rows[record.job_id] = record.row()
        self.pending.discard(record.job_id)
        table = as_read(pd.DataFrame(list(self.rows.values()), columns=list(INDEX_COLUMNS)))
        rows, cols, groups = grid_groups(table, self.cfg)
        for name, group in groups.items():
            if name not in self.started and not group.job_id.isin(self.pending).any():
                self.started.add(name)
                try:
                    make_grid(self.root, name, group, rows, cols, self.cfg, self.export)
                except Exception as exc:  # the report at the end makes it again; the videos are what matters
                    log.warning("comparison grid %s failed: %s: %s", name, type(exc).__name__, exc)

    def close(self, cancel: bool = False) -> None:
        """Waits for the grids under way (`cancel`: only for the one being made; the report makes the rest)."""
        self.pool.shutdown(wait=True, cancel_futures=cancel)


def as_read(table: pd.DataFrame) -> pd.DataFrame:
    """`table` with the column types it gets when the index is read back from its CSV (as the report reads it)."""
    return pd.read_csv(io.StringIO(table.to_csv(index=False)), keep_default_na=False, na_values=[""])


def tile_videos(output_dir: Path, group: pd.DataFrame, rows: str, cols: str | None, max_width: int) -> np.ndarray:
    row_values = sorted(group[rows].unique())
    col_values = sorted(group[cols].unique()) if cols else [None]
    records = list(group.itertuples())
    first = read_frames(output_dir / records[0].output)  # sets the tile size for all
    scale = min(1.0, max_width / first.shape[2])
    height, width = _even(first.shape[1] * scale), _even(first.shape[2] * scale)

    def shrink(video: np.ndarray) -> np.ndarray:
        size, bilinear = (width, height), Image.Resampling.BILINEAR
        return np.stack([np.asarray(Image.fromarray(frame).resize(size, bilinear)) for frame in video])

    # each video is decoded by an ffmpeg process of its own and shrunk at once: several at a time use the cores
    with ThreadPoolExecutor(max_workers=min(len(records), os.cpu_count() or 1)) as pool:
        rest = pool.map(lambda record: shrink(read_frames(output_dir / record.output)), records[1:])
        tiles = [shrink(first), *rest]
    videos = {(getattr(r, rows), getattr(r, cols) if cols else None): t for r, t in zip(records, tiles, strict=True)}
    length = max(v.shape[0] for v in videos.values())  # a shorter video (fewer segments, no loop) starts again
    canvas = np.full((length, len(row_values) * (height + LABEL_HEIGHT), len(col_values) * width, 3), 32, np.uint8)
    for r, row_value in enumerate(row_values):
        for c, col_value in enumerate(col_values):
            label = f"{SHORT_NAMES.get(rows, rows)}={row_value}"
            if cols:
                label += f" {SHORT_NAMES.get(cols, cols)}={col_value}"
            top, left = r * (height + LABEL_HEIGHT), c * width
            canvas[:, top : top + LABEL_HEIGHT, left : left + width] = _label(label, width)
            video = videos.get((row_value, col_value))
            if video is None:
                continue  # a missing or failed combination stays dark
            for i in range(length):
                canvas[i, top + LABEL_HEIGHT : top + LABEL_HEIGHT + height, left : left + width] = video[i % len(video)]
    return canvas


def _label(text: str, width: int) -> np.ndarray:
    image = Image.new("RGB", (width, LABEL_HEIGHT), (0, 0, 0))
    ImageDraw.Draw(image).text((3, 2), text, fill=(255, 255, 255))
    return np.asarray(image)


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)  # yuv420p needs even sizes


# --- the HTML gallery ----------------------------------------------------------------------------------------------


def gallery(output_dir: Path, grids: list[Path], cfg: ReportConfig | None = None) -> Path:
    """index.html: every job with its video (or error), filterable and sortable by parameter and status, the grids,
    and the timing / VRAM summary with a chart of mean stage times. Self-contained: no network, works from disk."""
    index = read_index(output_dir)
    jobs = [{k: (None if pd.isna(v) else v) for k, v in record.items()} for record in index.to_dict("records")]
    stages = {c.removeprefix("time_").removesuffix("_s"): _mean(index[index.status == "ok"], c) for c in TIME_COLUMNS}
    summary = {
        "jobs": len(index),
        "ok": int((index.status == "ok").sum()),
        "failed": int((index.status == "failed").sum()),
        "peak_vram_gib": _max(index, "peak_vram_gib"),
    }
    rows, cols = grid_axes(index, cfg or ReportConfig())
    page = _PAGE.format(
        title=html.escape(f"svd-batch: {output_dir.name}"),
        data=json.dumps({"jobs": jobs, "params": list(REPORT_AXES), "measures": list(QUALITY_COLUMNS),
                         "stages": stages, "summary": summary,
                         "grids": [g.relative_to(output_dir).as_posix() for g in grids],
                         "rows": rows, "cols": cols}).replace("</", "<\\/"),
    )  # fmt: skip
    path = output_dir / GALLERY_NAME
    partial = partial_name(path)  # a browser (or another worker) never sees half a page
    partial.write_text(page, encoding="utf-8")
    os.replace(partial, path)
    return path


def _mean(table: pd.DataFrame, column: str) -> float | None:
    values = pd.to_numeric(table.get(column), errors="coerce").dropna() if column in table else []
    return round(float(values.mean()), 3) if len(values) else None


def _max(table: pd.DataFrame, column: str) -> float | None:
    values = pd.to_numeric(table.get(column), errors="coerce").dropna() if column in table else []
    return round(float(values.max()), 2) if len(values) else None


def make_report(output_dir: Path, cfg: ReportConfig, export: ExportConfig) -> dict[str, Any]:
    grids = comparison_grids(output_dir, cfg, export) if cfg.grids else []
    page = gallery(output_dir, grids, cfg) if cfg.gallery else None
    return {"grids": grids, "gallery": page}


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 16px; background: #111; color: #eee; }}
h1 {{ font-size: 20px; }} .bar {{ display: flex; gap: 12px; flex-wrap: wrap; align-items: center; margin: 8px 0; }}
.jobs {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 12px; }}
.job {{ background: #222; border-radius: 6px; padding: 8px; }} .job.failed {{ outline: 2px solid #c33; }}
.job video, .grid video {{ width: 100%; border-radius: 4px; background: #000; }}
#grids {{ display: flex; flex-wrap: wrap; gap: 12px; }} .grid {{ width: 360px; }} .grid h3 {{ font-size: 13px; }}
.params {{ font: 12px monospace; color: #bbb; word-break: break-all; }} .error {{ color: #f88; font: 12px monospace; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 2px 8px; text-align: left; vertical-align: top; }}
table.sweep td {{ width: 260px; }} h2 {{ font-size: 16px; margin-top: 20px; }}
</style></head><body>
<h1>{title}</h1>
<div id="summary"></div><svg id="chart" width="420" height="140" role="img" aria-label="mean stage times"></svg>
<svg id="motion" width="420" height="180" role="img" aria-label="measured motion per swept value"></svg>
<div id="grids"></div>
<div class="bar">
  <label>status <select id="status">
    <option value="">all</option><option>ok</option><option>failed</option></select></label>
  <label>filter <input id="filter" placeholder="e.g. motion_bucket_id=127"></label>
  <label>sort by <select id="sort"></select></label>
</div>
<div id="jobs"></div>
<script id="data" type="application/json">{data}</script>
<script>
const D = JSON.parse(document.getElementById('data').textContent);
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({{'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}}[c]));
const s = D.summary, vram = s.peak_vram_gib === null ? 'n/a (CPU)' : s.peak_vram_gib + ' GiB';
$('summary').innerHTML = `<table><tr><th>jobs</th><td>${{s.jobs}}</td><th>ok</th><td>${{s.ok}}</td><th>failed</th>
  <td>${{s.failed}}</td><th>peak VRAM</th><td>${{vram}}</td></tr></table>`;
const stages = Object.entries(D.stages).filter(([k, v]) => v !== null && k !== 'total');
const longest = Math.max(...stages.map(([, v]) => v), 1e-9);
$('chart').innerHTML = stages.map(([k, v], i) => `<text x="0" y="${{i * 22 + 15}}" fill="#ccc">${{k}}</text>
  <rect x="90" y="${{i * 22 + 3}}" height="16" width="${{Math.max(1, 250 * v / longest)}}" fill="#4a9"></rect>
  <text x="${{95 + 250 * v / longest}}" y="${{i * 22 + 15}}" fill="#ccc">${{v.toFixed(2)}} s</text>`).join('');
// measured motion against the most-swept parameter: a line per image (how the setting moves the video)
function motionPlot() {{
  const ok = D.jobs.filter((j) => j.status === 'ok' && j.motion_px !== null && j.motion_px !== undefined);
  const axis = D.rows;
  if (!axis || !ok.length) return '';
  const xs = [...new Set(ok.map((j) => j[axis]))].sort((a, b) => (a > b) - (a < b));
  const top = Math.max(...ok.map((j) => j.motion_px), 1e-9);
  const px = (i) => 50 + (xs.length > 1 ? i * 340 / (xs.length - 1) : 170), py = (v) => 150 - 130 * v / top;
  const lines = [...new Set(ok.map((j) => j.id))].map((id, n) => {{
    const points = xs.map((x, i) => {{
      const v = ok.filter((j) => j.id === id && j[axis] === x).map((j) => j.motion_px);
      return v.length ? `${{px(i)}},${{py(v.reduce((a, b) => a + b, 0) / v.length)}}` : null;
    }}).filter(Boolean).join(' ');
    return `<polyline class="motion-line" points="${{points}}" fill="none" stroke="hsl(${{n * 67}},60%,60%)"
      stroke-width="2"><title>${{esc(id)}}</title></polyline>`;
  }});
  const ticks = xs.map((x, i) => `<text x="${{px(i)}}" y="170" fill="#ccc" text-anchor="middle">${{esc(x)}}</text>`);
  return `<text x="0" y="12" fill="#ccc">motion_px by ${{esc(axis)}} (max ${{top.toPrecision(3)}})</text>
    ${{ticks.join('')}}${{lines.join('')}}`;
}}
$('motion').innerHTML = motionPlot();
$('grids').innerHTML = D.grids.map((g) => `<div class="grid"><h3>${{esc(g)}}</h3>
  <video src="${{esc(g)}}" controls loop muted playsinline></video></div>`).join('');
$('sort').innerHTML = ['id', 'status', ...D.params, ...D.measures, 'time_total_s']
  .map((p) => `<option>${{p}}</option>`).join('');
const fmt = (v) => (v === null || v === undefined ? 'n/a' : Number(v).toPrecision(3));
const card = (j) => `<div class="job ${{j.status}}" data-job="${{j.job_id}}">
    <b>${{esc(j.id)}}</b> ${{j.status}}<br>
    ${{j.status === 'ok' ? `<video src="${{esc(j.output)}}" poster="${{esc(j.poster ?? '')}}" controls loop muted
        playsinline preload="metadata"></video>`
                         : `<div class="error">${{esc(j.error ?? '')}}</div>`}}
    <div class="params">${{D.params.map((p) => `${{p}}=${{j[p]}}`).join(' ')}}</div>
    <div class="params measures">${{D.measures.filter((m) => j[m] !== null && j[m] !== undefined)
      .map((m) => `${{m}}=${{fmt(j[m])}}`).join(' ')}}</div></div>`;
const uniq = (jobs, key) => [...new Set(jobs.map((j) => j[key]))].sort((a, b) => (a > b) - (a < b));
// one section per image: its videos in a table by the two swept parameters (the grids' axes)
function section(id, jobs) {{
  if (!D.rows) return `<h2>${{esc(id)}}</h2><div class="jobs">${{jobs.map(card).join('')}}</div>`;
  const cols = D.cols ? uniq(jobs, D.cols) : [null];
  const corner = `${{D.rows}}${{D.cols ? ' / ' + D.cols : ''}}`;
  const head = `<tr><th>${{corner}}</th>${{cols.map((c) => `<th>${{c ?? ''}}</th>`).join('')}}</tr>`;
  const body = uniq(jobs, D.rows).map((r) => `<tr><th>${{r}}</th>${{cols.map((c) => `<td>${{jobs
    .filter((j) => j[D.rows] === r && (c === null || j[D.cols] === c)).map(card).join('')}}</td>`).join('')}}</tr>`);
  return `<h2>${{esc(id)}}</h2><table class="sweep">${{head}}${{body.join('')}}</table>`;
}}
function render() {{
  const status = $('status').value, key = $('sort').value;
  const terms = $('filter').value.split(/\\s+/).filter(Boolean).map((t) => t.split('='));
  const jobs = D.jobs.filter((j) => (!status || j.status === status) &&
    terms.every(([k, v]) => v === undefined ? JSON.stringify(j).includes(k) : String(j[k]) === v));
  jobs.sort((a, b) => (a[key] > b[key] ? 1 : a[key] < b[key] ? -1 : 0));
  $('jobs').innerHTML = uniq(jobs, 'id').map((id) => section(id, jobs.filter((j) => j.id === id))).join('');
}}
['status', 'filter', 'sort'].forEach((id) => $(id).addEventListener('input', render));
render();
// mark each video once its first frame decoded (the gallery's browser test reads this)
document.addEventListener('loadeddata', (e) => e.target.setAttribute('data-ready', '1'), true);
</script></body></html>
"""
