"""aidetect: train, ship and watch a detector of AI-generated images."""

__version__ = "0.1.0"
