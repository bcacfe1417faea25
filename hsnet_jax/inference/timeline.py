"""`<name>_timeline.png`: a whole video's expressions at a glance, one panel per face track,
the class probabilities over time as a stacked area (each band's height is that expression's
probability, so the bands fill 0..1 and the widest band is the prediction)."""

from __future__ import annotations

import os
import tempfile
from typing import Any, Sequence

import numpy as np

from hsnet_jax.inference.figures import pyplot

MAX_TRACKS = 12  # panels; a video with more tracks shows its longest ones


def plot_timeline(rows: Sequence[dict[str, Any]], class_names: Sequence[str], path: str, title: str) -> str:
    """Writes the picture (under a temporary name, then renamed) and returns `path`."""
    plt = pyplot()
    tracks: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        tracks.setdefault(row["face_id"], []).append(row)
    shown = sorted(sorted(tracks, key=lambda k: -len(tracks[k]))[:MAX_TRACKS])
    end = max((row["time_s"] for row in rows), default=1.0) or 1.0
    fig, axes = plt.subplots(max(1, len(shown)), 1, figsize=(9, 0.6 + 1.5 * max(1, len(shown))),
                             sharex=True, squeeze=False)
    colours = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20").colors
    for ax, face in zip(axes[:, 0], shown):
        times = [row["time_s"] for row in tracks[face]]
        p = np.array([[row[name] for name in class_names] for row in tracks[face]]).T
        if len(times) == 1:  # one frame: a sliver one frame wide instead of an invisible line
            times = [times[0], times[0] + end / 200]
            p = np.repeat(p, 2, axis=1)
        ax.stackplot(times, p, colors=colours[:len(class_names)], labels=class_names)
        ax.set_ylim(0, 1)
        ax.set_xlim(0, end)
        ax.set_ylabel(f"face {face}", rotation=0, ha="right", va="center")
        ax.set_yticks([0, 1])
    if not shown:
        axes[0, 0].text(0.5, 0.5, "no face found", ha="center", va="center", transform=axes[0, 0].transAxes)
    axes[-1, 0].set_xlabel("time (s)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[k]) for k in range(len(class_names))]
    fig.legend(handles, class_names, loc="upper center", ncols=min(len(class_names), 7), fontsize=8,
               bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.suptitle(title, fontsize=10, y=0.0, va="bottom")
    fig.tight_layout(rect=(0, 0.04, 1, 1 - 0.35 / fig.get_figheight()))
    fd, partial = tempfile.mkstemp(prefix=".timeline.", suffix=".png", dir=os.path.dirname(os.path.abspath(path)))
    os.close(fd)
    try:
        fig.savefig(partial, dpi=80, format="png")
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    finally:
        plt.close(fig)
        if os.path.exists(partial):
            os.remove(partial)
    return path
