"""lookalike: visual similarity search for image catalogues."""

__version__ = "0.1.0"
