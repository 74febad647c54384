"""latentkit: latent variable models — learning θ by maximum marginal likelihood and
inference of p(z | x), with one contract for every family."""

__version__ = "0.1.0"
