"""Declarative rules: one Flink SQL file per rule, and the job that runs them."""
