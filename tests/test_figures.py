"""The training-curves figure read back from its matplotlib objects (no pixels): integer epoch
ticks, a visible style for every legend entry even where two lines coincide, the plateau
schedule's learning-rate cuts on both panels, few markers on a long run."""

import json

import numpy as np
import pytest

from hsnet_jax.inference import figures


def _records(num_epochs: int, cuts: dict[int, float]) -> list[dict]:
    """A run whose validation accuracy equals its mean accuracy (a balanced set); `cuts`:
    0-based epoch -> the lr_scale from that epoch on."""
    records, scale = [], 1.0
    for epoch in range(num_epochs):
        scale = cuts.get(epoch, scale)
        accuracy = 0.9 - 0.5 * np.exp(-epoch / 40)
        records.append(dict(epoch=epoch, lr_scale=scale, train_loss=1 / (epoch + 1), val_loss=1.2 / (epoch + 1),
                            train_accuracy=accuracy + 0.05, val_accuracy=accuracy, val_mean_accuracy=accuracy))
    return records


@pytest.mark.parametrize("num_epochs, cuts", [(3, {2: 0.1}), (500, {120: 0.1, 300: 0.01, 301: 0.001})])
def test_curves_read_at_a_glance(num_epochs, cuts):
    fig = figures.history_figure(_records(num_epochs, cuts))
    cut_epochs = [epoch + 1 - 0.5 for epoch in cuts]  # between the last epoch at a rate and the first at the next
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks
        assert len(ticks) <= 11  # readable for hundreds of epochs
        cut_lines = [line for line in ax.get_lines() if line.get_gid() == "lr_cut"]
        assert sorted(line.get_xdata()[0] for line in cut_lines) == cut_epochs
        curves = [line for line in ax.get_lines() if line.get_gid() != "lr_cut"]
        for line in curves:  # at most MAX_MARKERS markers per line, every epoch on a short run
            start, every = line.get_markevery()
            shown = np.arange(num_epochs)[start::every]
            assert len(shown) <= figures.MAX_MARKERS and (num_epochs > figures.MAX_MARKERS or len(shown) == num_epochs)
        legend = ax.get_legend()
        labels = [text.get_text() for text in legend.get_texts()]
        assert labels.count("learning-rate cut") == 1  # labelled once per panel
        assert len(labels) == len(curves) + 1
        for handle, label in zip(legend.legend_handles, labels):
            assert handle.get_visible() and handle.get_alpha() in (None, 1) and handle.get_linewidth() > 0, label
        for a in curves:  # a line drawn over an equal one differs from it in dash and marker
            for b in curves:
                if a is not b and np.array_equal(a.get_ydata(), b.get_ydata()):
                    assert a.get_linestyle() != b.get_linestyle() and a.get_marker() != b.get_marker()
    accuracy = fig.axes[1]
    assert sum(np.array_equal(accuracy.get_lines()[1].get_ydata(), line.get_ydata())
               for line in accuracy.get_lines()) == 2  # the data do coincide: validation and mean accuracy


def test_plot_history_writes_the_figure_of_metrics_jsonl(tmp_path):
    records = _records(4, {3: 0.1})
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    path = figures.plot_history(str(tmp_path))
    assert path == str(tmp_path / "training_curves.png")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert figures.lr_cuts(records) == [(4, 0.1)]
