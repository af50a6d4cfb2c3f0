"""PostgreSQL: migrations, connections and repositories."""
