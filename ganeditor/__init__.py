"""GAN Editor: edit photos with generative adversarial networks."""

__version__ = "0.1.0"
APP_NAME = "GAN Editor"
