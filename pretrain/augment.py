"""Augmentations applied to whole batches as tensors, on the training device.

Each op draws its per-image parameters from an explicit `torch.Generator`, so a step's augmentations depend only
on (run seed, rank, step): a resumed run sees exactly the views an uninterrupted one would have.
Inputs and outputs are float tensors in [0, 1], shape (B, 3, H, W).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# ImageNet statistics: a fixed, documented input scale shared by pretraining and the probe.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class AugmentConfig:
    """Strengths follow MoCo v2's recipe; `blur_sigma` is in pixels at the output size."""

    crop_scale: tuple[float, float] = (0.2, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    grayscale_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)


def contrastive(size: int) -> AugmentConfig:
    """MoCo v2's recipe with the blur scaled from 224 px to `size`, so it removes the same share of detail."""
    scale = size / 224
    return AugmentConfig(blur_sigma=(0.1 * scale, 2.0 * scale))


def supervised(size: int) -> AugmentConfig:
    """Classifying programs only needs geometric variety and mild colour changes: colour is much of a program's
    identity, so strong jitter would hide the label."""
    del size
    return AugmentConfig(crop_scale=(0.35, 1.0), jitter_p=0.5, brightness=0.2, contrast=0.2, saturation=0.2,
                         hue=0.0, grayscale_p=0.0, blur_p=0.0)


def _uniform(n: int, low: float, high: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) * (high - low) + low


def _chance(n: int, p: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) < p


def random_resized_crop(
    x: torch.Tensor, size: int, scale: tuple[float, float], ratio: tuple[float, float], flip_p: float,
    gen: torch.Generator,
) -> torch.Tensor:
    """Per-image crop of a random area fraction and aspect ratio, resized to `size`, optionally mirrored;
    one affine grid_sample for the whole batch."""
    n, device = x.shape[0], x.device
    area = _uniform(n, scale[0], scale[1], gen, device)
    log_ratio = _uniform(n, math.log(ratio[0]), math.log(ratio[1]), gen, device)
    aspect = torch.exp(log_ratio)
    half_w = torch.sqrt(area * aspect).clamp(max=1.0)  # in grid units, where the full image spans [-1, 1]
    half_h = torch.sqrt(area / aspect).clamp(max=1.0)
    center_x = (torch.rand(n, generator=gen, device=device) * 2 - 1) * (1 - half_w)
    center_y = (torch.rand(n, generator=gen, device=device) * 2 - 1) * (1 - half_h)
    flip = torch.where(_chance(n, flip_p, gen, device), -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=device, dtype=x.dtype)
    theta[:, 0, 0] = half_w * flip
    theta[:, 0, 2] = center_x
    theta[:, 1, 1] = half_h
    theta[:, 1, 2] = center_y
    grid = F.affine_grid(theta, [n, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _gray(x: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor(_LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


def _rotate_hue(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate the chroma plane of YIQ by `angle` radians per image: a cheap, smooth stand-in for an HSV hue shift."""
    to_yiq = torch.tensor(
        [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], device=x.device, dtype=x.dtype
    )
    from_yiq = torch.linalg.inv(to_yiq)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.zeros(x.shape[0], 3, 3, device=x.device, dtype=x.dtype)
    rotation[:, 0, 0] = 1
    rotation[:, 1, 1], rotation[:, 1, 2] = cos, -sin
    rotation[:, 2, 1], rotation[:, 2, 2] = sin, cos
    matrix = from_yiq @ rotation @ to_yiq  # (B, 3, 3)
    return torch.einsum("bij,bjhw->bihw", matrix, x)


def color_jitter(x: torch.Tensor, config: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    n, device = x.shape[0], x.device
    apply = _chance(n, config.jitter_p, gen, device).view(n, 1, 1, 1)
    brightness = _uniform(n, 1 - config.brightness, 1 + config.brightness, gen, device).view(n, 1, 1, 1)
    contrast = _uniform(n, 1 - config.contrast, 1 + config.contrast, gen, device).view(n, 1, 1, 1)
    saturation = _uniform(n, 1 - config.saturation, 1 + config.saturation, gen, device).view(n, 1, 1, 1)
    hue = _uniform(n, -config.hue, config.hue, gen, device) * 2 * math.pi
    out = (x * brightness).clamp(0, 1)
    mean = _gray(out).mean(dim=(2, 3), keepdim=True)
    out = ((out - mean) * contrast + mean).clamp(0, 1)
    gray = _gray(out)
    out = ((out - gray) * saturation + gray).clamp(0, 1)
    out = _rotate_hue(out, hue).clamp(0, 1)
    return torch.where(apply, out, x)


def random_grayscale(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    apply = _chance(x.shape[0], p, gen, x.device).view(-1, 1, 1, 1)
    return torch.where(apply, _gray(x).expand_as(x), x)


def gaussian_blur(x: torch.Tensor, p: float, sigma: tuple[float, float], gen: torch.Generator) -> torch.Tensor:
    """Separable Gaussian blur with a per-image sigma, as one grouped convolution per axis."""
    n, c, h, w = x.shape
    device = x.device
    apply = _chance(n, p, gen, device)
    sigmas = _uniform(n, sigma[0], sigma[1], gen, device)
    radius = max(1, min(int(math.ceil(3 * sigma[1])), (min(h, w) - 1) // 2))
    offsets = torch.arange(-radius, radius + 1, device=device, dtype=x.dtype)
    kernels = torch.exp(-0.5 * (offsets.view(1, -1) / sigmas.view(-1, 1)) ** 2)
    kernels = kernels / kernels.sum(dim=1, keepdim=True)
    kernels = torch.where(apply.view(-1, 1), kernels, (offsets == 0).to(x.dtype).view(1, -1))  # identity kernel
    kernels = kernels.repeat_interleave(c, dim=0)  # (n*c, k)
    flat = x.reshape(1, n * c, h, w)
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="reflect"), kernels.view(n * c, 1, -1, 1), groups=n * c)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"), kernels.view(n * c, 1, 1, -1), groups=n * c)
    return flat.view(n, c, h, w)


def normalize(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) to float in [0, 1]."""
    return images.float().div_(255.0)


def augment(x: torch.Tensor, size: int, config: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """One view of a batch: crop+flip, colour jitter, grayscale, blur, then normalisation; channels-last."""
    out = random_resized_crop(x, size, config.crop_scale, config.crop_ratio, config.flip_p, gen)
    if config.jitter_p > 0:
        out = color_jitter(out, config, gen)
    if config.grayscale_p > 0:
        out = random_grayscale(out, config.grayscale_p, gen)
    if config.blur_p > 0:
        out = gaussian_blur(out, config.blur_p, config.blur_sigma, gen)
    return normalize(out).contiguous(memory_format=torch.channels_last)
