"""Inference on photos and videos: the layer above the models, data and faces."""
