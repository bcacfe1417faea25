"""hsnet-jax: HSNet (Fan et al. 2022) for facial expression recognition in JAX/Flax.

Importing the package (or any module of it) changes no signal handler, logging filter or hook:
the commands (`python -m hsnet_jax.<command>`) install what they need when they start
(`hsnet_jax.runtime.cli`). The layers and their rules: docs/design.md, "10. The package's layers".
"""

__version__ = "0.1.0"
