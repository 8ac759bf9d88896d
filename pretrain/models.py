"""ResNet-18 and ResNet-50 in plain torch (torchvision is not available beside the CPU build of torch).

The backbone returns the feature maps of its four stages, so the probe can read any of them; `width` scales every
stage's channels (64 is the standard network), and `stem` picks the ImageNet stem (7x7 stride-2 conv + max-pool:
a 64 px input reaches stage 4 at 2x2) or a small-image stem (3x3 stride-1, no pool: 4x the compute, for 32 px).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch import nn

ARCHS: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
}
Stem = Literal["imagenet", "small"]


@dataclass(frozen=True)
class BackboneSpec:
    """Everything needed to rebuild a backbone; stored in checkpoints so the probe can check it."""

    arch: str = "resnet18"
    width: int = 64
    stem: str = "imagenet"

    def to_json(self) -> dict:
        return asdict(self)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(in_channels, channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, 1, bias=False)  # stride on the 3x3, as in v1.5
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))


class ResNet(nn.Module):
    """A ResNet backbone without a classifier: `forward` gives the pooled last-stage features,
    `stages` the four feature maps."""

    def __init__(self, spec: BackboneSpec) -> None:
        super().__init__()
        if spec.arch not in ARCHS:
            raise ValueError(f"unknown architecture {spec.arch!r} (choose from {', '.join(ARCHS)})")
        if spec.width < 8:
            raise ValueError(f"width must be at least 8, got {spec.width}")
        self.spec = spec
        block_kind, depths = ARCHS[spec.arch]
        block = BasicBlock if block_kind == "basic" else Bottleneck
        if spec.stem == "imagenet":
            self.stem = nn.Sequential(
                nn.Conv2d(3, spec.width, 7, 2, 3, bias=False),
                nn.BatchNorm2d(spec.width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            )
        elif spec.stem == "small":
            self.stem = nn.Sequential(
                nn.Conv2d(3, spec.width, 3, 1, 1, bias=False), nn.BatchNorm2d(spec.width), nn.ReLU(inplace=True)
            )
        else:
            raise ValueError(f"unknown stem {spec.stem!r} (imagenet or small)")
        in_channels = spec.width
        layers: list[nn.Module] = []
        self.stage_channels: list[int] = []
        for index, depth in enumerate(depths):
            channels = spec.width * (2**index)
            blocks: list[nn.Module] = []
            for b in range(depth):
                blocks.append(block(in_channels, channels, 2 if (b == 0 and index > 0) else 1))
                in_channels = channels * block.expansion
            layers.append(nn.Sequential(*blocks))
            self.stage_channels.append(in_channels)
        self.stages = nn.ModuleList(layers)
        self.feature_dim = in_channels
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def stage_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stage_maps(x)[-1].mean(dim=(2, 3))


def build_backbone(spec: BackboneSpec, channels_last: bool = True) -> ResNet:
    model = ResNet(spec)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model
