"""Which EGL devices a pretraining rank's render workers draw on (`harvest pretrain --render-device`).

auto: each rank on its own GPU's EGL device, local rank r on GPU device r mod (GPU devices), so a rank renders on
the GPU it trains on when EGL and CUDA count the GPUs alike; on a machine without GPU devices, EGL's default.
A list (or cpu): the rank's workers take turns over their share of the list, rank r holding every
(local ranks)-th device from r on, or device r mod (devices) when there are fewer devices than ranks.
"""

from __future__ import annotations

from renderer.devices import AUTO, EglDevice, egl_devices, resolve_render_devices


def rank_render_devices(choice: str, local_rank: int, local_world_size: int,
                        devices: list[EglDevice] | None = None) -> tuple[int, ...]:
    """The device indices of this rank's workers; () for EGL's default. RenderError for a device that does not
    exist or a choice that is not auto, cpu, N or N,M,..."""
    found = egl_devices() if devices is None else devices
    if choice.strip().lower() == AUTO:
        gpus = [device.index for device in found if not device.software]
        return (gpus[local_rank % len(gpus)],) if gpus else ()
    listed = resolve_render_devices(choice, found)
    share = listed[local_rank::max(1, local_world_size)]
    return share if share else (listed[local_rank % len(listed)],)
