"""Buckets and tables (being written for issue 4)."""
