"""harvest: collect GLSL image programs, validate them, export datasets and pretrain on live renders."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("harvest")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+local"

USER_AGENT = f"harvest/{__version__} (+https://github.com/harvest-shaders/harvest)"
