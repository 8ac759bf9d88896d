"""Alembic migrations that own the catalog's schema (applied by corpus.db on first use)."""
