"""Faces: detection, crops, tracking and drawing."""
