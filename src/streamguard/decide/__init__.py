"""The decision service: ledger, lists, enrichment, APPROVE / REVIEW / BLOCK."""
