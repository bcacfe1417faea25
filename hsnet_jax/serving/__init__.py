"""The demo server of `python -m hsnet_jax.serve`: routes, upload checks, the batched model, the page."""
