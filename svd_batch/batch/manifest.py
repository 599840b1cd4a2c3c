"""Reads the CSV manifest: one row per image, optional id, optional per-row parameter overrides.

Everything wrong with the file is collected and refused up front, before the model loads, with messages that name the
row (as the line number a spreadsheet or editor shows) and the column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from svd_batch.config import (
    SAMPLE_PARAM_NAMES,
    SAMPLE_PARAM_TYPES,
    SvdBatchError,
    check_sample_param,
    coerce_sample_param,
)

IMAGE_COLUMN = "image"
ID_COLUMN = "id"
KNOWN_COLUMNS = (IMAGE_COLUMN, ID_COLUMN, *SAMPLE_PARAM_NAMES)
_SAFE_ID = re.compile(r"[^\w.-]+")  # letters (any script), digits, _ . -


class ManifestError(SvdBatchError):
    pass


@dataclass(frozen=True)
class ManifestRow:
    line: int  # line in the CSV file (the header is line 1)
    item_id: str
    image: str  # absolute path or http(s) URL
    overrides: dict[str, Any] = field(default_factory=dict)


def bundled_manifest() -> Path:
    """The sample manifest shipped inside the package (used when `manifest` is null)."""
    return Path(str(resources.files("svd_batch") / "samples" / "manifest.csv"))


def is_url(ref: str) -> bool:
    return ref.lower().startswith(("http://", "https://"))


def read_manifest(path: str | Path) -> list[ManifestRow]:
    path = Path(path).expanduser()
    if not path.is_file():
        raise ManifestError(
            f"manifest {path} does not exist: pass manifest=PATH/TO/images.csv (a CSV with an "
            f"'{IMAGE_COLUMN}' column), or leave manifest unset to run the bundled samples"
        )
    try:
        # utf-8-sig drops a BOM (spreadsheets write one); every cell stays text until we check it
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ManifestError(f"manifest {path} is not a readable UTF-8 CSV file: {exc}") from exc
    return parse_manifest(table, base_dir=path.parent, source=str(path))


def parse_manifest(table: pd.DataFrame, base_dir: Path, source: str = "manifest") -> list[ManifestRow]:
    columns = [str(c).strip() for c in table.columns]
    table.columns = columns
    unknown = [c for c in columns if c not in KNOWN_COLUMNS]
    if unknown:
        raise ManifestError(
            f"{source}: unknown column(s) {', '.join(map(repr, unknown))}; allowed: "
            f"{', '.join(KNOWN_COLUMNS)} (rename or remove the column)"
        )
    if IMAGE_COLUMN not in columns:
        raise ManifestError(
            f"{source}: no '{IMAGE_COLUMN}' column; the first line must name the columns, e.g. "
            f"'{IMAGE_COLUMN},{ID_COLUMN}', then one image path or URL per row"
        )

    rows: list[ManifestRow] = []
    problems: list[str] = []
    seen_ids: dict[str, int] = {}
    for position, record in enumerate(table.to_dict("records")):
        line = position + 2
        cells = {k: str(v).strip() for k, v in record.items()}
        if not any(cells.values()):
            continue  # blank lines are allowed
        image = cells[IMAGE_COLUMN]
        if not image:
            problems.append(f"line {line}, column '{IMAGE_COLUMN}': empty; give an image path or URL")
            continue
        overrides: dict[str, Any] = {}
        for name in SAMPLE_PARAM_NAMES:
            text = cells.get(name, "")
            if not text:
                continue
            value, problem = (text, None) if SAMPLE_PARAM_TYPES[name] is str else _parse_number(text)
            problem = problem or check_sample_param(name, value)
            if problem:
                problems.append(f"line {line}, column '{name}': {problem}")
            else:
                overrides[name] = coerce_sample_param(name, value)
        item_id = _item_id(cells.get(ID_COLUMN, ""), image, line)
        if item_id in seen_ids and not cells.get(ID_COLUMN):
            item_id = f"{item_id}_line{line}"  # two images share a file name: keep both, distinguishably
        if item_id in seen_ids:
            problems.append(
                f"line {line}, column '{ID_COLUMN}': id '{item_id}' is already used on line "
                f"{seen_ids[item_id]}; ids must be unique"
            )
        seen_ids[item_id] = line
        rows.append(ManifestRow(line=line, item_id=item_id, image=_resolve_image(image, base_dir), overrides=overrides))

    if problems:
        raise ManifestError(f"{source} has {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    if not rows:
        raise ManifestError(f"{source} lists no images: add rows with an '{IMAGE_COLUMN}' path or URL")
    return rows


def _parse_number(text: str) -> tuple[float | int | None, str | None]:
    try:
        return int(text), None
    except ValueError:
        pass
    try:
        return float(text), None
    except ValueError:
        return None, f"'{text}' is not a number"


def _item_id(given: str, image: str, line: int) -> str:
    """A file-name-safe id: the given one, else the image's file stem; never a path."""
    raw = given or Path(image.split("?")[0]).stem or f"row{line}"
    return _SAFE_ID.sub("_", raw).strip("._") or f"row{line}"


def _resolve_image(image: str, base_dir: Path) -> str:
    if is_url(image):
        return image
    path = Path(image).expanduser()
    return str(path if path.is_absolute() else (base_dir / path).resolve())
