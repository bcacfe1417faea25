"""Which files of a manual download preparation looks at.

Archives unpacked from macOS carry `__MACOSX/` folders and `._NAME` sidecar files (resource
forks, not images); notebooks leave `.ipynb_checkpoints/`, Finder leaves `.DS_Store`. None of
them is data: every path component that starts with "." and every `__MACOSX` folder is
ignored, and listed (relative to the manual directory, a folder once, ending in "/") so the
prepare summary can count them instead of stopping on them as bad names or corrupt images.

Symlinked folders and files are followed like real ones (a class folder that is a link is
never dropped); a link back to a folder already walked (a loop, or a second path to the same
images) is one LayoutError line, never an endless walk or images counted twice.
"""

from __future__ import annotations

import dataclasses
import os

from hsnet_jax.data.errors import LayoutError

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
    walked: dict[str, str] = {}  # real path -> the path it was first walked as
    for folder, dirs, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in walked:
            raise LayoutError(f"{folder} is {walked[real]} again (a symlink loop or a second link to the same "
                              "folder): remove the link")
        walked[real] = folder
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
