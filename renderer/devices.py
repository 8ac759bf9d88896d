"""Which EGL devices render: enumerating them, reading `--render-device`, and naming their renderers.

EGL numbers its devices in the order `eglQueryDevicesEXT` returns them; glcontext's `device_index`
picks from that same list, so the indices here are the ones workers pass to `create_context`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass

from renderer.errors import RenderError

EGL_EXTENSIONS = 0x3055
# Mesa marks llvmpipe/softpipe's device with this extension; a GPU's device lacks it.
SOFTWARE_EXTENSION = "EGL_MESA_device_software"
AUTO = "auto"
CPU = "cpu"


@dataclass(frozen=True)
class EglDevice:
    index: int
    software: bool
    extensions: tuple[str, ...]


def _egl_function(egl: ctypes.CDLL, name: str, restype: object, *argtypes: object):
    egl.eglGetProcAddress.restype = ctypes.c_void_p
    egl.eglGetProcAddress.argtypes = [ctypes.c_char_p]
    address = egl.eglGetProcAddress(name.encode())
    if not address:
        raise RenderError(f"this EGL cannot list its devices (no {name})")
    return ctypes.CFUNCTYPE(restype, *argtypes)(address)


def _load_egl() -> ctypes.CDLL:
    try:
        return ctypes.CDLL(ctypes.util.find_library("EGL") or "libEGL.so.1")
    except OSError as exc:
        raise RenderError(f"cannot load EGL: {exc}") from exc


def egl_devices() -> list[EglDevice]:
    """Every device EGL reports, in device_index order."""
    egl = _load_egl()
    device_array = ctypes.POINTER(ctypes.c_void_p)
    query_devices = _egl_function(egl, "eglQueryDevicesEXT", ctypes.c_uint, ctypes.c_int, device_array,
                                  ctypes.POINTER(ctypes.c_int))
    query_string = _egl_function(egl, "eglQueryDeviceStringEXT", ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int)
    count = ctypes.c_int(0)
    if not query_devices(0, None, ctypes.byref(count)):
        raise RenderError("EGL cannot list its devices (eglQueryDevicesEXT failed)")
    handles = (ctypes.c_void_p * max(count.value, 1))()
    if not query_devices(count.value, handles, ctypes.byref(count)):
        raise RenderError("EGL cannot list its devices (eglQueryDevicesEXT failed)")
    devices = []
    for index in range(count.value):
        raw = query_string(handles[index], EGL_EXTENSIONS) or b""
        extensions = tuple(raw.decode("ascii", errors="replace").split())
        devices.append(EglDevice(index=index, software=SOFTWARE_EXTENSION in extensions, extensions=extensions))
    return devices


def _parse_indices(text: str) -> tuple[int, ...]:
    parts = [part.strip() for part in text.split(",")]
    if not parts or not all(part.isdigit() for part in parts):
        raise RenderError(f"--render-device must be auto, cpu, N or N,M,..., not {text!r}")
    return tuple(dict.fromkeys(int(part) for part in parts))


def resolve_render_devices(text: str, devices: list[EglDevice] | None = None) -> tuple[int, ...]:
    """The device indices `--render-device TEXT` names; () for auto (EGL's default device)."""
    choice = text.strip().lower()
    if choice == AUTO:
        return ()
    found = egl_devices() if devices is None else devices
    if choice == CPU:
        software = [device.index for device in found if device.software]
        if not software:
            raise RenderError("--render-device cpu: EGL reports no software (llvmpipe/softpipe) device")
        return (software[0],)
    indices = _parse_indices(choice)
    missing = [index for index in indices if index >= len(found)]
    if missing:
        raise RenderError(f"render device {missing[0]} does not exist: EGL reports "
                          f"{len(found)} device(s), numbered from 0")
    return indices


def describe_render_devices(indices: tuple[int, ...]) -> list[str]:
    """One `renderer [device N]` line per device, read from a context made and dropped here."""
    from renderer.context import create_context

    lines = []
    for index in indices or (None,):
        context = create_context(index)
        try:
            renderer = context.info.get("GL_RENDERER", "unknown renderer")
            vendor = context.info.get("GL_VENDOR", "unknown vendor")
        finally:
            context.release()
        lines.append(f"{renderer}, {vendor} [{'default EGL device' if index is None else f'device {index}'}]")
    return lines
