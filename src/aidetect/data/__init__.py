"""Data: sources, dataset versions, validation, demo data, image features (no torch here)."""
