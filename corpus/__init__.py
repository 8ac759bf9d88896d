"""The catalog and everything derived from it: models, migrations glue, dedup, scoring, export."""
