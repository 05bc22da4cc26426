"""Model architectures: a compact CNN built for small images, plus torchvision backbones.

``build_model(arch, num_classes, input_size)`` returns an ``nn.Module`` mapping float32
``[N, 3, input_size, input_size]`` (normalised by ``aidetect.data.imaging``) to logits ``[N, num_classes]``.
Torchvision backbones are always built with ``weights=None`` (no hub downloads); pass ``weights=`` a
local path or ``s3://`` URI of a state dict to start from pretrained weights.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import torch
from torch import nn

from aidetect.errors import ConfigError

# compact variants: (stem width, stage widths, blocks per stage, stride of each stage's first block).
# "compact" (~11 M multiply-adds at 32 px) is sized for CPU training and sub-millisecond CPU inference;
# "compact_l" (~62 M multiply-adds) keeps a full-resolution stage: the CIFAKE preset on a bf16 CPU or a GPU.
_COMPACT: dict[str, tuple[int, tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = {
    "compact": (16, (32, 64, 128), (1, 1, 1), (2, 2, 2)),
    "compact_s": (16, (24, 48, 96), (1, 1, 1), (2, 2, 2)),
    "compact_l": (32, (32, 64, 128, 256), (1, 1, 1, 1), (1, 2, 2, 2)),
}
TORCHVISION_ARCHS = ("mobilenet_v3_small", "efficientnet_b0", "resnet18")


class ResidualBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 projection) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class CompactNet(nn.Module):
    """A small ResNet for detecting generation artefacts.

    Generation artefacts live in high frequencies, so small inputs (<= 64 px) enter through a
    full-resolution 3x3 stem with no pooling; any downsampling is done by learned strided convolutions
    inside residual blocks, never by blind pooling. Larger inputs get a strided stem that brings them to
    about a quarter of their size first. Global average pooling makes any input size work.
    """

    def __init__(
        self,
        num_classes: int,
        input_size: int,
        stem: int = 32,
        widths: tuple[int, ...] = (32, 64, 128),
        blocks: tuple[int, ...] = (1, 1, 1),
        strides: tuple[int, ...] = (2, 2, 2),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if input_size > 64:
            # 224 px -> 56 px: stride-2 conv then stride-2 max pool
            layers += [nn.Conv2d(3, stem, 5, 2, 2, bias=False), nn.BatchNorm2d(stem), nn.ReLU(inplace=True)]
            layers += [nn.MaxPool2d(3, 2, 1)]
        else:
            layers += [nn.Conv2d(3, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU(inplace=True)]
        c = stem
        for w, n, s in zip(widths, blocks, strides, strict=True):
            for j in range(n):
                layers.append(ResidualBlock(c, w, stride=s if j == 0 else 1))
                c = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():  # zero-init the last BN of each block: blocks start as identity
            if isinstance(m, ResidualBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        return self.fc(self.dropout(x))


class FlipAveraged(nn.Module):
    """Averages the logits of each image and its mirror image, in one pass over a doubled batch.

    Test-time augmentation for a detector whose label does not change under a horizontal flip. The
    wrapped network is ``.module``, so ``checkpoint.unwrap`` and saved state dicts see the plain net.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        logits = self.module(torch.cat([x, x.flip(3)]))
        return (logits[:n] + logits[n:]) / 2


def with_flip_average(model: nn.Module, enabled: bool) -> nn.Module:
    """``model`` wrapped in :class:`FlipAveraged` when ``enabled`` (the checkpoint's ``flip_average``)."""
    return FlipAveraged(model) if enabled else model


def _torchvision_model(arch: str, num_classes: int) -> nn.Module:
    from aidetect.torchvision_compat import import_torchvision

    tv = import_torchvision()
    factory: Callable[..., nn.Module] = getattr(tv.models, arch)
    return factory(weights=None, num_classes=num_classes)


def available_archs() -> list[str]:
    """Every name ``build_model`` accepts."""
    return sorted(_COMPACT) + list(TORCHVISION_ARCHS)


def check_arch(arch: str, field: str = "arch") -> None:
    """Raise :class:`ConfigError` naming ``field`` when ``arch`` is unknown."""
    if arch not in _COMPACT and arch not in TORCHVISION_ARCHS:
        raise ConfigError(f"{field}: unknown model {arch!r} (known: {', '.join(available_archs())})")


def load_weights(model: nn.Module, weights: str) -> list[str]:
    """Load a state dict (local path or ``s3://``) into ``model``, skipping the classifier head.

    Tensors whose shape does not match (the head of an ImageNet checkpoint, say) are skipped; any
    other missing key is an error. Returns the names of the skipped keys.
    """
    from aidetect import storage

    try:
        state = torch.load(io.BytesIO(storage.read_bytes(weights)), map_location="cpu", weights_only=True)
    except (RuntimeError, ValueError, EOFError) as exc:
        raise ConfigError(f"weights: {weights} is not a torch state dict ({exc})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    skipped = sorted(set(own) - set(usable))
    if len(usable) < len(own) // 2:
        raise ConfigError(f"weights: {weights} matches only {len(usable)}/{len(own)} tensors of this model")
    model.load_state_dict(usable, strict=False)
    return skipped


def build_model(arch: str, num_classes: int, input_size: int, weights: str | None = None) -> nn.Module:
    """Build ``arch`` for ``num_classes`` outputs at ``input_size`` px; optionally load ``weights``."""
    check_arch(arch)
    if num_classes < 2:
        raise ConfigError(f"num_classes: need at least 2 classes, got {num_classes}")
    if input_size < 16:
        raise ConfigError(f"input_size: must be at least 16 px, got {input_size}")
    if arch in _COMPACT:
        stem, widths, blocks, strides = _COMPACT[arch]
        model: nn.Module = CompactNet(num_classes, input_size, stem, widths, blocks, strides)
    else:
        model = _torchvision_model(arch, num_classes)
    if weights:
        load_weights(model, weights)
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
