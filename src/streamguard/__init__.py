"""StreamGuard: real-time fraud detection for Brazilian financial transactions."""

__version__ = "0.1.0"
