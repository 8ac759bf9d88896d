"""Errors the catalog layer raises for a user to read: the CLI prints each as one `error:` line."""


class CorpusError(Exception):
    """A corpus step (export, gallery, reading an export) cannot do what was asked."""


class CatalogError(CorpusError):
    """The catalog cannot be used as asked (missing folder, not SQLite, damaged, too new, busy)."""


class CatalogBusy(CatalogError):
    """Another process holds the catalog's writer lock."""


class CatalogDamaged(CatalogError):
    """SQLite found the file corrupt or truncated."""


class CatalogTooNew(CatalogError):
    """The schema was written by a newer harvest than this one."""
