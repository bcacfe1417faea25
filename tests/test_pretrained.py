"""hsnet_jax.models.pretrained without torch: write, read back, drop into HSNet, refuse what does not fit."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from hsnet_jax.models import pretrained
from hsnet_jax.errors import HSNetError
from hsnet_jax.models import HSNet, InceptionResnetV1, Stem

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _random(module, seed=0):
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: rng.normal(size=s.shape).astype(np.float32),
                        pretrained.reference_shapes(module))


def _equal(a, b):
    return jax.tree.all(jax.tree.map(np.array_equal, a, b))


def test_loading_needs_no_torch():
    out = subprocess.run([sys.executable, "-m", "tests.programs.heavy_imports", "hsnet_jax.models.pretrained"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    assert "torch" not in json.loads(out.stdout)


def test_round_trip_and_load_into_hsnet(tmp_path):
    stem, full = _random(Stem(), 1), _random(InceptionResnetV1(), 2)
    paths = pretrained.save_pretrained(str(tmp_path), stem, full)
    assert paths == [str(tmp_path / "stem"), str(tmp_path / "inception_resnet_v1")]
    assert _equal(pretrained.load_stem_variables(str(tmp_path)), stem)
    assert _equal(pretrained.load_inception_resnet_v1_variables(str(tmp_path)), full)

    variables = _random(HSNet(7), 3)
    loaded = pretrained.load_stem_into(variables, str(tmp_path))
    for c in pretrained.COLLECTIONS:
        assert _equal(loaded[c]["stem"], stem[c])
        assert loaded[c]["body"] is variables[c]["body"]
        assert not _equal(variables[c]["stem"], stem[c])  # the input is left untouched

    with pytest.raises(HSNetError, match="already exists; pass --force"):
        pretrained.save_pretrained(str(tmp_path), stem)
    pretrained.save_pretrained(str(tmp_path), _random(Stem(), 4), overwrite=True)
    assert not _equal(pretrained.load_stem_variables(str(tmp_path)), stem)


def test_save_refuses_variables_of_another_shape(tmp_path):
    stem = _random(Stem())
    stem["params"]["conv2d_4b"]["conv"]["kernel"] = np.zeros((3, 3, 192, 128), np.float32)
    with pytest.raises(HSNetError, match=r"conv2d_4b/conv/kernel is \(3, 3, 192, 128\), "
                                         r"expected \(3, 3, 192, 256\)"):
        pretrained.save_pretrained(str(tmp_path), stem)
    assert not (tmp_path / "stem").exists()


def test_load_stem_into_refuses_a_mismatched_stem(tmp_path):
    pretrained.save_pretrained(str(tmp_path), _random(Stem()))
    variables = _random(Stem())
    variables = {c: {"stem": variables[c], "body": {}} for c in pretrained.COLLECTIONS}
    variables["params"]["stem"]["conv2d_1a"]["conv"]["kernel"] = np.zeros((3, 3, 3, 16))
    with pytest.raises(HSNetError, match=r"conv2d_1a/conv/kernel is \(3, 3, 3, 16\)"):
        pretrained.load_stem_into(variables, str(tmp_path))
    with pytest.raises(HSNetError, match="no 'stem' entries"):
        pretrained.load_stem_into({"params": {}}, str(tmp_path))


def test_loaders_name_a_missing_or_wrong_directory(tmp_path):
    with pytest.raises(HSNetError, match="no ported stem at .*convert/port_stem.py"):
        pretrained.load_stem_variables(str(tmp_path / "nowhere"))
    with pytest.raises(HSNetError, match="no ported inception_resnet_v1 .* --full"):
        pretrained.load_inception_resnet_v1_variables(str(tmp_path / "nowhere"))
    (tmp_path / "stem").mkdir()
    with pytest.raises(HSNetError, match="not a readable orbax checkpoint"):
        pretrained.load_stem_variables(str(tmp_path))
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(tmp_path / "wrong" / "stem", {
            "params": {"conv": np.zeros(3)}, "batch_stats": {"bn": np.zeros(3)}})
    with pytest.raises(HSNetError, match="does not match Stem: missing 30: .*unexpected 2"):
        pretrained.load_stem_variables(str(tmp_path / "wrong"))
