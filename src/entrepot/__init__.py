"""entrepot: one self-hosted service for tables, objects, SQL and exports."""

__version__ = "0.1.0"
