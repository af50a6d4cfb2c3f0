"""The local stack: Kafka, PostgreSQL and the Flink rules job as native processes."""
