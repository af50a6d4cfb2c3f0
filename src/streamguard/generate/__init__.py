"""The transaction generator."""
