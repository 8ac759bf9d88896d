"""Pretraining's errors for a user to read (the CLI prints each as one `error:` line)."""


class PretrainError(Exception):
    """Pretraining or probing cannot start or go on as asked (bad data, bad checkpoint, bad device)."""
