"""`raf_db`: the Real-world Affective Faces Database, basic emotions, aligned 100x100 faces."""

from __future__ import annotations

import os
import re

import numpy as np

from hsnet_jax.data.builder import (Examples, ManualBuilder, Records, carve_validation, check_labels, one_line,
                                    require_dir)
from hsnet_jax.data.errors import LayoutError
from hsnet_jax.data.expressions import CANONICAL_EXPRESSIONS
from hsnet_jax.data.scan import scan

LABEL_FILE = os.path.join("basic", "EmoLabel", "list_patition_label.txt")  # sic, the official name
IMAGE_DIR = os.path.join("basic", "Image", "aligned")
ALIGNED_NAME = re.compile(r"(train|test)_\d+_aligned\.jpg")


class RafDb(ManualBuilder, skip_registration=True):
    """RAF-DB basic: official train (12,271) / test (3,068); validation = 10% of train, stratified."""

    TITLE = "RAF-DB"
    CLASS_NAMES = CANONICAL_EXPRESSIONS  # the label file's 1..7, in this order
    IMAGE_SIZE = 100
    HOMEPAGE = "http://www.whdeng.cn/RAF/model1.html"
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Request RAF-DB from {HOMEPAGE} and unpack it so that --manual_dir holds
    basic/EmoLabel/list_patition_label.txt (lines like "train_00001.jpg 5", labels 1..7 =
    surprise fear disgust happiness sadness anger neutral) and basic/Image/aligned/
    (train_00001_aligned.jpg ...).
    """

    def _records(self, root: str) -> Records:
        label_file = os.path.join(root, LABEL_FILE)
        image_dir = os.path.join(root, IMAGE_DIR)
        help_text = one_line(self.MANUAL_DOWNLOAD_INSTRUCTIONS)
        if not os.path.isfile(label_file):
            raise LayoutError(f"RAF-DB label file not found: expected {label_file}. {help_text}")
        require_dir(image_dir, "RAF-DB aligned images", help_text)
        found = scan(root)
        on_disk = {os.path.basename(p) for p in found.files if os.path.dirname(p) == image_dir}
        problems, records, first_line = [], Records([], [], {"file_name": []}, [], ignored=found.ignored), {}
        with open(label_file, "rb") as f:
            for line_no, raw in enumerate(f, 1):
                where = f"{label_file}:{line_no}"
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    problems.append(f"{where}: not UTF-8 text (byte 0x{raw[e.start]:02X} at column {e.start + 1})")
                    continue
                if not line.strip():
                    continue
                parts = line.split()
                if len(parts) != 2 or not parts[0].startswith(("train_", "test_")):
                    problems.append(f"{where}: expected 'train_00001.jpg 5', got {line.strip()!r}")
                    continue
                name, value = parts
                if value not in {str(i) for i in range(1, 8)}:
                    problems.append(f"{where}: unknown label {value!r} (expected 1..7)")
                    continue
                image = name.rsplit(".", 1)[0] + "_aligned.jpg"
                if image in first_line:
                    problems.append(f"{where}: {name} again (first at line {first_line[image]})")
                    continue
                first_line[image] = line_no
                if image not in on_disk:
                    problems.append(f"{where}: no image {os.path.join(image_dir, image)}")
                    continue
                records.add(os.path.join(image_dir, image), int(value) - 1, (image,), name.split("_", 1)[0])
        for name in sorted(on_disk - set(first_line)):
            path = os.path.join(image_dir, name)
            if ALIGNED_NAME.fullmatch(name):
                problems.append(f"{path}: image without a line in {label_file}")
            else:
                records.unparseable.append((path, "not a RAF-DB aligned image name (train_00001_aligned.jpg)"))
        check_labels(problems, "RAF-DB")
        if not first_line:
            raise LayoutError(f"RAF-DB label file {label_file} lists no images. {help_text}")
        return records

    def _split(self, examples: Examples) -> dict[str, np.ndarray]:
        return carve_validation(examples, self.SEED)
