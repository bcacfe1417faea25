"""Small trees of the field's databases (AffectNet, FER2013 / FERPlus, CK+, JAFFE, SFEW, ExpW) in
their official layouts, file names, headers and label files; images generated, tiny.

Each function returns what its tests need to know (paths, the rows written). Nothing binary is
committed.
"""

from __future__ import annotations

import os

import numpy as np

from data_trees import image, save

AFFECTNET_HEADER = ("subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,"
                    "valence,arousal")
FER2013_HEADER = "emotion,pixels,Usage"
FERPLUS_HEADER = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
USAGES = ("Training", "PublicTest", "PrivateTest")


def landmarks(box: tuple[int, int, int, int]) -> np.ndarray:
    """68 (x, y) points inside `box` (x, y, w, h); point 0 at the box's centre."""
    x, y, w, h = box
    points = np.stack([x + w * np.linspace(0.1, 0.9, 68), y + h * np.linspace(0.9, 0.1, 68)], 1)
    points[0] = (x + w / 2, y + h / 2)
    return points


def affectnet(root: str, codes_per_list=None, size=(64, 64), box=(12, 10, 32, 36)) -> dict:
    """Manually_Annotated_file_lists/{training,validation}.csv and Manually_Annotated_Images/<dir>/<hash>.jpg;
    by default codes 0-10 twice in training, 0-7 once in validation."""
    codes_per_list = codes_per_list or {"training.csv": list(range(11)) * 2, "validation.csv": list(range(8))}
    lists = os.path.join(root, "Manually_Annotated_file_lists")
    os.makedirs(lists, exist_ok=True)
    rows = {}
    for n, (name, codes) in enumerate(codes_per_list.items()):
        lines = [AFFECTNET_HEADER]
        for i, code in enumerate(codes):
            rel = f"{100 + i % 3}/{n}{i:03d}a7c3e.jpg"
            save(os.path.join(root, "Manually_Annotated_Images", *rel.split("/")), image(100 * n + i, size))
            points = ";".join(f"{v:.2f}" for v in landmarks(box).reshape(-1))
            lines.append(f'{rel},{box[0]},{box[1]},{box[2]},{box[3]},"{points}",{code},{0.1 * (i % 5):.3f},-0.25')
            rows.setdefault(name, []).append((rel, code))
        with open(os.path.join(lists, name), "w") as f:
            f.write("\n".join(lines) + "\n")
    return {"lists": lists, "rows": rows}


def affectnet_sets(root: str, codes_per_set=None) -> dict:
    """train_set/images/N.jpg + train_set/annotations/N_{exp,val,aro,lnd}.npy, val_set/ alike (faces 48x48)."""
    codes_per_set = codes_per_set or {"train_set": list(range(8)) * 3, "val_set": list(range(8))}
    for name, codes in codes_per_set.items():
        os.makedirs(os.path.join(root, name, "annotations"), exist_ok=True)
        for n, code in enumerate(codes):
            save(os.path.join(root, name, "images", f"{n}.jpg"), image(n, (48, 48)))
            stem = os.path.join(root, name, "annotations", str(n))
            np.save(stem + "_exp.npy", np.asarray(str(code)))
            np.save(stem + "_val.npy", np.asarray("0.5"))
            np.save(stem + "_aro.npy", np.asarray("-0.5"))
            np.save(stem + "_lnd.npy", landmarks((0, 0, 48, 48)).reshape(-1).astype(np.float32))
    return codes_per_set


def fer2013(root: str, rows=None) -> list[tuple[int, str]]:
    """fer2013.csv: by default 2 Training, 1 PublicTest, 1 PrivateTest row per emotion 0-6."""
    rows = rows or [(e, usage) for e in range(7) for usage in ("Training", "Training", "PublicTest", "PrivateTest")]
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(0)
    lines = [FER2013_HEADER]
    for emotion, usage in rows:
        lines.append(f"{emotion},{' '.join(map(str, rng.integers(0, 256, 48 * 48)))},{usage}")
    with open(os.path.join(root, "fer2013.csv"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return rows


def ferplus(root: str, votes: list[tuple[int, ...] | None], usages: list[str]) -> str:
    """fer2013new.csv beside fer2013.csv: one row per face, `None` votes: no Image name (dropped)."""
    lines = [FERPLUS_HEADER]
    for i, (counts, usage) in enumerate(zip(votes, usages)):
        name = "" if counts is None else f"fer{i:07d}.png"
        lines.append(f"{usage},{name},{','.join(map(str, counts or (0,) * 9 + (10,)))}")
    path = os.path.join(root, "fer2013new.csv")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


CK_SUBJECTS = tuple(f"S{n:03d}" for n in (5, 10, 11, 14, 22, 26, 32, 34, 35, 37))


def ckplus(root: str, subjects=CK_SUBJECTS, frames: int = 5) -> dict:
    """cohn-kanade-images/S005/001/S005_001_0000000N.png (N = 1..frames, 48x48 noise: MTCNN finds no face, quickly) and
    Emotion/S005/001/S005_001_0000000<frames>_emotion.txt, codes 1-7 in turn; each subject's
    sequence 002 (3 frames) has no Emotion file."""
    labels = {}
    for s, subject in enumerate(subjects):
        for sequence, n in (("001", frames), ("002", 3)):
            for frame in range(1, n + 1):
                name = f"{subject}_{sequence}_{frame:08d}.png"
                save(os.path.join(root, "cohn-kanade-images", subject, sequence, name), image(s * 10 + frame, (48, 48)))
        code = s % 7 + 1
        folder = os.path.join(root, "Emotion", subject, "001")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{subject}_001_{frames:08d}_emotion.txt"), "w") as f:
            f.write(f"   {code:.7e}\n")
        os.makedirs(os.path.join(root, "Emotion", subject, "002"), exist_ok=True)  # empty, as in CK+
        labels[subject] = code
    return labels


JAFFE_SUBJECTS = ("KA", "KL", "KM", "KR", "MK", "NA", "NM", "TM", "UY", "YM")
JAFFE_CODES = ("AN", "DI", "FE", "HA", "NE", "SA", "SU")


def jaffe(root: str, subjects=JAFFE_SUBJECTS, codes=JAFFE_CODES) -> list[str]:
    """KA.AN1.39.tiff ... flat in `root` (48x48 grey noise, TIFF as distributed)."""
    paths = []
    for s, subject in enumerate(subjects):
        for c, code in enumerate(codes):
            path = os.path.join(root, f"{subject}.{code}1.{s * 10 + c + 1}.tiff")
            paths.append(save(path, image(s * 10 + c, (48, 48))[..., 0]))
    return paths


SFEW_EMOTIONS = ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")


def sfew(root: str, train: int = 10, val: int = 1) -> list[str]:
    """Train/Train_Aligned_Faces/<Emotion>/*.png and Val/Val_Aligned_Faces/<Emotion>/*.png (36x30)."""
    paths = []
    for folder, faces, n in (("Train", "Train_Aligned_Faces", train), ("Val", "Val_Aligned_Faces", val)):
        for e, emotion in enumerate(SFEW_EMOTIONS):
            for i in range(n):
                name = f"Film_{e:03d}{i:05d}_00000005.png"
                paths.append(save(os.path.join(root, folder, faces, emotion, name), image(e * 100 + i, (36, 30))))
    return paths


def expw(root: str, photos: int = 20) -> list[tuple[str, int, int]]:
    """image/origin/<expression>_<word>_<n>.jpg (80x64) and label/label.lst; every third photo has
    two faces. Returns (image_name, face_id, label) per line."""
    lines, faces = [], []
    for p in range(photos):
        name = f"{('angry', 'happy', 'sad')[p % 3]}_actor_{100 + p}.jpg"
        save(os.path.join(root, "image", "origin", name), image(p, (64, 80)))
        for face_id in range(2 if p % 3 == 0 else 1):
            label = (p + face_id) % 7
            top, left = 4 + 20 * face_id, 6 + 30 * face_id
            lines.append(f"{name} {face_id} {top} {left} {left + 30} {top + 34} {50.5 - p:.4f} {label}")
            faces.append((name, face_id, label))
    os.makedirs(os.path.join(root, "label"), exist_ok=True)
    with open(os.path.join(root, "label", "label.lst"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return faces
