"""The pure core: models, scoring and policy, with no I/O."""
