"""The SQL API's core: a PostgreSQL-flavoured dialect on sandboxed DuckDB, COPY, batch jobs."""
