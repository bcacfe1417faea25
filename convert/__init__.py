"""Weight converters into this package's checkpoints; scripts that need torch (not installed with hsnet_jax)."""
