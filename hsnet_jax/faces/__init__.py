"""Faces: the MTCNN detection procedure, the face crop rule and photo decoding.

Import-free on purpose: `hsnet_jax.faces.mtcnn_procedure`, `crop_rule` and `photo` need only
numpy and Pillow, so `hsnet_jax.deploy` (ONNX Runtime, no jax) imports them without jax.
"""
