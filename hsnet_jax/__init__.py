"""hsnet-jax: HSNet (Fan et al. 2022) for facial expression recognition in JAX/Flax."""

__version__ = "0.1.0"
