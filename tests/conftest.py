"""Shared pytest setup: float32 on CPU, reproducible, and the repository on sys.path."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # so tests can import convert/ as a package-less module dir
