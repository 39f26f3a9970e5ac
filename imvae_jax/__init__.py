"""imvae-jax: IM-VAE cross-domain sequential recommendation in JAX."""

__version__ = "0.1.0"
