"""The fingerprint of a prepared split: which files, with which labels, it was made from.

A SHA-256 over the split's (file name, class name, SHA-256 of the source bytes) sorted by file
name, one line each. Two results whose splits have the same fingerprint were trained and
tested on the same files with the same labels, whatever folder, machine or order they were
prepared in. The source bytes are the image file as downloaded (for FER2013 and FERPlus, the
48x48 pixels of the CSV row); a face cropped twice from one photo (ExpW) hashes the photo twice
under two file names. Preparation computes it while writing (`ManualBuilder`), stores it in
the dataset's metadata, and `prepare --fingerprint_only` computes the same value from the
download without decoding anything: equal unless preparation skipped undecodable files.
"""

from __future__ import annotations

import hashlib


class Fingerprint:
    """Accumulates one split's entries in any order; `hexdigest` sorts them."""

    def __init__(self) -> None:
        self._entries: list[tuple[str, str, str]] = []

    def add(self, file_name: str, class_name: str, source: bytes) -> None:
        self._entries.append((file_name, class_name, hashlib.sha256(source).hexdigest()))

    def hexdigest(self) -> str:
        digest = hashlib.sha256()
        for entry in sorted(self._entries):
            digest.update(("\t".join(entry) + "\n").encode())
        return digest.hexdigest()
