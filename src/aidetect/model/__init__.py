"""Networks, training, evaluation with slices, quality gates (torch lives here, not in serving)."""
