"""The canonical 7-expression mapping across databases."""

from hsnet_jax.data import CANONICAL_EXPRESSIONS, canonical_mapping


def test_canonical_mapping_across_databases():
    assert CANONICAL_EXPRESSIONS == ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
    rafd = ("angry", "contemptuous", "disgusted", "fearful", "happy", "neutral", "sad", "surprised")
    assert canonical_mapping(rafd).tolist() == [5, -1, 2, 1, 3, 6, 4, 0]
    kdef = ("afraid", "angry", "disgusted", "happy", "neutral", "sad", "surprised")
    assert canonical_mapping(kdef).tolist() == [1, 5, 2, 3, 6, 4, 0]
    ferg = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
    assert canonical_mapping(ferg).tolist() == [5, 2, 1, 3, 6, 4, 0]
    assert canonical_mapping(CANONICAL_EXPRESSIONS).tolist() == list(range(7))


def test_every_database_maps_onto_the_canonical_expressions(tmp_path):
    from hsnet_jax.data.registry import DATASETS, get_builder

    for name in sorted(set(DATASETS) - {"image_folder"}):
        cls = get_builder(name, str(tmp_path)).__class__
        for config in cls.BUILDER_CONFIGS or [None]:
            full = name if config is None else f"{name}/{config.name}"
            classes = get_builder(full, str(tmp_path)).info.features["label"].names
            mapping = canonical_mapping(classes)
            assert all((m >= 0) != (c.startswith("contempt")) for c, m in zip(classes, mapping)), (full, classes)
            mapped = [m for m in mapping if m >= 0]
            assert len(set(mapped)) == len(mapped) and len(mapped) >= 6, full  # CK+'s default has no neutral
