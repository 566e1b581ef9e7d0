"""credlyctl: sync Credly badges into Microsoft 365 profiles and explain what is missing."""

__version__ = "0.1.0"
