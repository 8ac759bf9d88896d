"""The renderer's errors for a user to read (the CLI prints each as one `error:` line)."""


class RenderError(Exception):
    """Rendering cannot start or go on as asked: no EGL device, workers that cannot start, a bad executor."""
