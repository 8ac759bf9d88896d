"""Turning program code into pixels, safely: GL context, dialect wrappers, workers and verdicts."""

# Bump when a change would alter verdicts or pixels: `harvest validate` redoes older verdicts.
RENDERER_VERSION = "4"
