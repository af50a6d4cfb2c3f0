"""The decision service (`decide`): the ledger's writes, lists, enrichment, APPROVE/REVIEW/BLOCK."""
