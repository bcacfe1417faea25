"""Which files of a manual download preparation looks at.

Archives unpacked from macOS carry `__MACOSX/` folders and `._NAME` sidecar files (resource
forks, not images); notebooks leave `.ipynb_checkpoints/`, Finder leaves `.DS_Store`. None of
them is data: every path component that starts with "." and every `__MACOSX` folder is
ignored, and listed (relative to the manual directory, a folder once, ending in "/") so the
prepare summary can count them instead of stopping on them as bad names or corrupt images.
"""

from __future__ import annotations

import dataclasses
import os

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff")  # JAFFE is TIFF


def is_ignored(name: str) -> bool:
    """A hidden entry (`.ipynb_checkpoints`, `._x.jpg`, `.DS_Store`) or a `__MACOSX` folder."""
    return name.startswith(".") or name == "__MACOSX"


@dataclasses.dataclass
class Scan:
    files: list[str]  # full paths, sorted
    ignored: list[str]  # relative to the scanned root; folders end in "/"


def scan(root: str, images_only: bool = True) -> Scan:
    """Every file under `root` (only IMAGE_EXTENSIONS in any case when `images_only`), and the
    ignored entries (not descended into)."""
    files, ignored = [], []
    for folder, dirs, names in os.walk(root):
        rel = os.path.relpath(folder, root)
        for name in dirs:
            if is_ignored(name):
                ignored.append(os.path.normpath(os.path.join(rel, name)) + "/")
        dirs[:] = [d for d in dirs if not is_ignored(d)]
        for name in names:
            if is_ignored(name):
                ignored.append(os.path.normpath(os.path.join(rel, name)))
            elif not images_only or name.lower().endswith(IMAGE_EXTENSIONS):
                files.append(os.path.join(folder, name))
    return Scan(sorted(files), sorted(ignored))
