"""The per-frame table of `predict --video`: CSV (pandas' `read_csv` reads it as it is) or JSON
lines (`.jsonl` / `.json`), one row per face per processed frame, written under a temporary
name and renamed when complete.

Columns: video, frame, time_s, face_id, box ("x0,y0,x1,y1" in CSV, a list in JSON lines),
prediction, one probability per class, and with smoothing smooth_<class> per class.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from typing import Any, Sequence, TextIO

JSON_EXTENSIONS = (".jsonl", ".json", ".ndjson")


def columns(class_names: Sequence[str], smooth: bool) -> list[str]:
    return (["video", "frame", "time_s", "face_id", "box", "prediction", *class_names]
            + ([f"smooth_{name}" for name in class_names] if smooth else []))


def write_rows(out: TextIO, rows: Sequence[dict[str, Any]], names: list[str], as_json: bool) -> None:
    if as_json:
        for row in rows:
            out.write(json.dumps({k: row[k] for k in names}) + "\n")
        return
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([",".join(f"{v:g}" for v in row[k]) if k == "box" else
                         f"{row[k]:.6f}" if isinstance(row[k], float) and k != "time_s" else row[k] for k in names])


def check_writable(path: str) -> None:
    """Raises OSError when a file cannot be created at `path` (checked before any work)."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"no folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK) or os.path.exists(path) and not os.access(path, os.W_OK):
        raise PermissionError(f"cannot write in {folder}")


def save(path: str | None, rows: Sequence[dict[str, Any]], class_names: Sequence[str], smooth: bool,
         stdout: TextIO) -> None:
    """Writes the table to `path` (format by extension) or, without a path, CSV to `stdout`."""
    names = columns(class_names, smooth)
    if path is None:
        buffer = io.StringIO()
        write_rows(buffer, rows, names, False)
        stdout.write(buffer.getvalue())
        return
    fd, partial = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "w", newline="") as f:
            write_rows(f, rows, names, path.lower().endswith(JSON_EXTENSIONS))
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
