"""A virtual environment holding only the named distributions (and what they require), linked
from this interpreter's installed copies: no network, seconds to make. The deploy tests run in
one to prove what a path does not import (flax, orbax, torch, this package's model code)."""

from __future__ import annotations

import importlib.metadata as md
import os
import subprocess
import sys

from packaging.requirements import Requirement


def closure(names: list[str]) -> dict[str, md.Distribution]:
    """The distributions `names` and, recursively, their unconditional requirements."""
    found: dict[str, md.Distribution] = {}
    todo = list(names)
    while todo:
        dist = md.distribution(todo.pop())
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in found:
            continue
        found[key] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return found


def make_venv(path: str, names: list[str]) -> str:
    """Creates the environment at `path` (no pip) with `names` linked in; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", path], check=True)
    python = os.path.join(path, "bin", "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    for dist in closure(names).values():
        tops = {str(f).split("/")[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops - {"__pycache__", "bin"}:
            source = os.path.join(str(dist.locate_file("")), top)
            target = os.path.join(site, top)
            if os.path.exists(source) and not os.path.lexists(target) and not top.endswith(".pth"):
                os.symlink(source, target)
    return python
