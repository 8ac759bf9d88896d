"""Turning program code into pixels, safely: GL context, dialect wrappers, workers and verdicts."""
