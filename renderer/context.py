"""A headless GL context, created in the process that will use it."""

from __future__ import annotations

import os

import moderngl

from renderer.errors import RenderError

# Shadertoy's renderer is WebGL2; desktop GL 3.3 core covers everything our wrappers emit.
REQUIRED_GL_VERSION = 330


def create_context(device_index: int | None = None) -> moderngl.Context:
    """A standalone EGL context (llvmpipe on a CPU machine, the GPU `device_index` on a GPU machine).

    Callers that want a single-threaded llvmpipe or a shader cache set `LP_NUM_THREADS` /
    `MESA_SHADER_CACHE_DIR` in the environment before calling.
    """
    # WebGL zero-initialises every variable; Mesa leaves them undefined and llvmpipe then draws
    # garbage that changes between runs. Mesa reads this driconf option when the display opens.
    os.environ.setdefault("glsl_zero_init", "true")
    # Without "silent" Mesa tells stderr about every option overridden from the environment.
    os.environ.setdefault("MESA_DEBUG", "silent")
    options: dict[str, object] = {"backend": "egl", "require": REQUIRED_GL_VERSION}
    if device_index is not None:
        options["device_index"] = device_index
    try:
        return moderngl.create_standalone_context(**options)
    except Exception as exc:  # moderngl/glcontext raise plain Exceptions for a missing EGL
        raise RenderError(f"cannot create a headless GL context (EGL): {exc}") from exc
