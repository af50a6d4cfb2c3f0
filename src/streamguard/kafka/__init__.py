"""Thin wrappers over confluent-kafka, and the topic names."""
