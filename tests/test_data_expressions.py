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
