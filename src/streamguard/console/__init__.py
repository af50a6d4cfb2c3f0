"""The console: web pages and the REST API over the ledger, the queue and the lists."""
