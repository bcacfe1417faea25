"""Faces in photos: MTCNN's detection procedure, the face crop rule, photo decoding, the answers
`predict` gives per face, and annotated copies.

Import-free on purpose: `hsnet_jax.faces.mtcnn_procedure`, `crop_rule`, `photo` and `answers`
need only numpy and Pillow, so `hsnet_jax.deploy` (ONNX Runtime, no jax) imports them without jax.
"""
