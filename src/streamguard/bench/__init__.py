"""End-to-end benchmark."""
