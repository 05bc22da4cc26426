"""Click commands, one module per concern; imported lazily by :mod:`aidetect.cli`."""
