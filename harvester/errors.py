"""Errors that end a command with one readable line instead of a traceback."""


class HarvestError(Exception):
    """A user-facing failure: the CLI prints `error: <message>` and exits with status 1."""
