"""Small fixture trees in each database's real layout and real file names (generated images).

Built in pytest tmp dirs by the test modules; nothing binary is committed. RaFD and KDEF
images are the astronaut's face from `skimage.data.astronaut()` (so MTCNN finds a real face)
with a per-file tint; `face=False` draws noise instead (no face).
"""

from __future__ import annotations

import functools
import os

import numpy as np
from PIL import Image

RAF_DB_NAMES = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
RAFD_EMOTIONS = ("angry", "contemptuous", "disgusted", "fearful", "happy", "neutral", "sad", "surprised")
KDEF_CODES = ("AF", "AN", "DI", "HA", "NE", "SA", "SU")
FERG_EXPRESSIONS = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")


@functools.lru_cache(maxsize=1)
def _astronaut_face() -> np.ndarray:
    import skimage.data

    return np.asarray(Image.fromarray(skimage.data.astronaut()[0:300, 100:350]).resize((100, 120)))


def image(seed: int, size: tuple[int, int], face: bool = False) -> np.ndarray:
    """uint8 [h, w, 3]: a tinted astronaut face (face=True) or seeded noise."""
    rng = np.random.default_rng(seed)
    if face:
        tint = rng.uniform(0.8, 1.2, 3)
        face = np.asarray(Image.fromarray(_astronaut_face()).resize(size[::-1]))
        return np.clip(face * tint, 0, 255).astype(np.uint8)
    return rng.integers(0, 256, size + (3,), dtype=np.uint8)


def save(path: str, pixels: np.ndarray) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def raf_db(root: str, train_per_class: int = 10, test_per_class: int = 3) -> dict:
    """basic/EmoLabel/list_patition_label.txt + basic/Image/aligned/*_aligned.jpg (100x100)."""
    lines, n = [], 0
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        index = 0
        for c in range(7):
            for _ in range(per_class):
                index += 1
                name = f"{split}_{index:05d}"
                lines.append(f"{name}.jpg {c + 1}")
                save(os.path.join(root, "basic", "Image", "aligned", f"{name}_aligned.jpg"), image(n, (100, 100)))
                n += 1
    label_file = os.path.join(root, "basic", "EmoLabel", "list_patition_label.txt")
    os.makedirs(os.path.dirname(label_file), exist_ok=True)
    with open(label_file, "w") as f:
        f.write("\n".join(lines) + "\n")
    return {"label_file": label_file, "image_dir": os.path.join(root, "basic", "Image", "aligned")}


def rafd(root: str, subjects=(1, 2, 3, 4, 5), angles=("090", "045"), emotions=RAFD_EMOTIONS,
         folder=lambda name: "", size=(160, 120), face=True) -> list[str]:
    """Rafd090_01_Caucasian_female_angry_frontal.jpg, flat in `root` or in `folder(name)`
    (160x120 faces; `face=False`: noise, which MTCNN crops fast)."""
    paths = []
    for s in subjects:
        for angle in angles:
            for e, emotion in enumerate(emotions):
                gender = "female" if s % 2 else "male"
                name = f"Rafd{angle}_{s:02d}_Caucasian_{gender}_{emotion}_frontal.jpg"
                paths.append(save(os.path.join(root, folder(name), name), image(s * 100 + e, size, face=face)))
    return paths


def kdef(root: str, people=("F01", "F02", "M01", "M02", "M03"), angles=("S", "HL"), codes=KDEF_CODES) -> list[str]:
    """KDEF/AF01/AF01ANS.JPG (session A): upper-case .JPG, 160x120 images."""
    paths = []
    for p, person in enumerate(people):
        folder = "A" + person
        for angle in angles:
            for c, code in enumerate(codes):
                name = f"{folder}{code}{angle}.JPG"
                paths.append(save(os.path.join(root, "KDEF", folder, name), image(p * 100 + c, (160, 120), face=True)))
    return paths


def ferg_db(root: str, characters=("aia", "ray"), per_expression: int = 5) -> list[str]:
    """FERG_DB_256/<character>/<character>_<expression>/<character>_<expression>_<n>.png (64x64)."""
    paths = []
    for ch in characters:
        for e, expression in enumerate(FERG_EXPRESSIONS):
            for n in range(1, per_expression + 1):
                folder = os.path.join(root, "FERG_DB_256", ch, f"{ch}_{expression}")
                paths.append(save(os.path.join(folder, f"{ch}_{expression}_{n}.png"), image(e * 10 + n, (64, 64))))
    return paths


def image_folder(root: str, counts=None) -> list[str]:
    """<root>/<split>/<class>/*.jpg|png."""
    counts = counts or {("train", "cat"): 3, ("train", "dog"): 2, ("test", "cat"): 1, ("test", "dog"): 2}
    paths = []
    for i, ((split, cls), n) in enumerate(counts.items()):
        for j in range(n):
            ext = "png" if j % 2 else "jpg"
            paths.append(save(os.path.join(root, split, cls, f"{cls}{j}.{ext}"), image(i * 10 + j, (40, 50))))
    return paths


# The first bytes of an AppleDouble file, what macOS archives store as ._NAME beside NAME.
APPLE_DOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(60)


def macos_debris(root: str, images: list[str]) -> list[str]:
    """What macOS and notebooks leave in an unpacked archive, around the real `images` under
    `root`: __MACOSX/ with a ._ file per image, a ._ sidecar and a .ipynb_checkpoints/ copy
    beside the first image, a .DS_Store. Returns the entries preparation must ignore (relative
    to root, folders once with a trailing /), sorted."""
    for path in images:
        rel = os.path.relpath(path, root)
        sidecar = os.path.join(root, "__MACOSX", os.path.dirname(rel), "._" + os.path.basename(rel))
        os.makedirs(os.path.dirname(sidecar), exist_ok=True)
        with open(sidecar, "wb") as f:
            f.write(APPLE_DOUBLE)
    first = os.path.relpath(images[0], root)
    folder, name = os.path.split(first)
    with open(os.path.join(root, folder, "._" + name), "wb") as f:
        f.write(APPLE_DOUBLE)
    with open(images[0], "rb") as f:
        copy = f.read()
    os.makedirs(os.path.join(root, folder, ".ipynb_checkpoints"))
    with open(os.path.join(root, folder, ".ipynb_checkpoints", name), "wb") as f:
        f.write(copy)
    with open(os.path.join(root, ".DS_Store"), "wb") as f:
        f.write(bytes(16))
    return sorted([".DS_Store", "__MACOSX/", os.path.join(folder, "._" + name),
                   os.path.join(folder, ".ipynb_checkpoints") + "/"])
