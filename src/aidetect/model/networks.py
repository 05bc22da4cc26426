"""Model architectures: a compact CNN built for small images, a forensic CNN for native-resolution
crops (fixed residual / wavelet front end), plus torchvision backbones.

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


def _pooled_head(net: nn.Module, layers: list[nn.Module], c: int, num_classes: int, dropout: float) -> None:
    """``net.features`` (the layers), global average pooling, dropout and a linear classifier; He init."""
    net.features = nn.Sequential(*layers)
    net.pool = nn.AdaptiveAvgPool2d(1)
    net.dropout = nn.Dropout(dropout)
    net.fc = nn.Linear(c, num_classes)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


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
        _pooled_head(self, layers, c, num_classes, dropout)
        for m in self.modules():  # zero-init the last BN of each block: blocks start as identity
            if isinstance(m, ResidualBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        return self.fc(self.dropout(x))


class ResidualFrontEnd(nn.Module):
    """Fixed high-pass views of the input (no weights: constants of the exported ONNX graph).

    - NPR (neighbouring-pixel residuals, Tan et al. 2024): ``x`` minus its 2x nearest-neighbour
      up-sampled sub-sample; generators up-sample, which leaves correlations between neighbouring
      pixels that real cameras do not. ``[N, 3, S, S]``.
    - Haar wavelet high bands (SAFE, Li et al. 2024): LH, HL and HH of each channel at half
      resolution, as one fixed grouped stride-2 convolution. ``[N, 9, S/2, S/2]``.

    ``S`` must be even; crops models use multiples of 8, aligned to the image's 8 px grid.
    """

    HAAR_HIGH = (
        ((0.5, 0.5), (-0.5, -0.5)),  # LH: horizontal detail
        ((0.5, -0.5), (0.5, -0.5)),  # HL: vertical detail
        ((0.5, -0.5), (-0.5, 0.5)),  # HH: diagonal detail
    )

    def __init__(self) -> None:
        super().__init__()
        bands = torch.tensor(self.HAAR_HIGH, dtype=torch.float32)[:, None]  # [3, 1, 2, 2]
        self.register_buffer("haar", bands.repeat(3, 1, 1, 1), persistent=False)  # [9, 1, 2, 2]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        up = nn.functional.interpolate(x[:, :, ::2, ::2], scale_factor=2.0, mode="nearest")
        npr = x - up
        bands = nn.functional.conv2d(x, self.haar, stride=2, groups=3)
        return npr, bands


def _conv_bn(c_in: int, c_out: int, k: int, stride: int) -> nn.Sequential:
    conv = nn.Conv2d(c_in, c_out, k, stride, (k - 1) // 2, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class ForensicNet(nn.Module):
    """A compact from-scratch detector for native-resolution crops: :class:`ResidualFrontEnd`, then a
    small strided CNN on the residuals only (image content reaches the network only through high-pass
    filters, which keeps it from learning the subject matter of a class).

    The NPR residual enters through a learned 2x2 stride-2 convolution (each output sees one 2x2
    up-sampling cell), is joined with the Haar bands at half resolution, then stride-2 stages and global
    average pooling (any even input size works).
    """

    def __init__(
        self,
        num_classes: int,
        stem: int = 16,
        widths: tuple[int, ...] = (32, 48, 96),
        blocks: tuple[int, ...] = (0, 1, 1),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.front = ResidualFrontEnd()
        self.npr_stem = nn.Conv2d(3, stem, 2, 2, bias=False)
        self.join = nn.Sequential(nn.BatchNorm2d(stem + 9), nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        c = stem + 9
        for w, n in zip(widths, blocks, strict=True):
            layers += [_conv_bn(c, w, 3, 2)] if n == 0 else [ResidualBlock(c, w, 2)]
            layers += [ResidualBlock(w, w) for _ in range(max(0, n - 1))]
            c = w
        _pooled_head(self, layers, c, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        npr, bands = self.front(x)
        x = self.join(torch.cat([self.npr_stem(npr), bands], dim=1))
        x = self.pool(self.features(x)).flatten(1)
        return self.fc(self.dropout(x))


# forensic variants: (npr stem width, stage widths, blocks per stage: 0 = one plain strided conv)
_FORENSIC: dict[str, tuple[int, tuple[int, ...], tuple[int, ...]]] = {
    "forensic_s": (16, (32, 48, 96), (0, 1, 1)),
    "forensic_m": (24, (48, 96, 192), (0, 1, 1)),
}


# dual variants: (thumbnail net, its input size, native-resolution forensic net). See DualNet.
_DUAL: dict[str, tuple[str, int, str]] = {
    "dual_s": ("compact_l", 32, "forensic_s"),
}


def native_detail(x: torch.Tensor, tol: float = 1e-6) -> torch.Tensor:
    """bool ``[N]``: rows that carry pixel detail finer than a 2x nearest-neighbour enlargement.

    An image the preprocessing enlarged (``PreprocessSpec.enlarge``: a thumbnail) is piecewise constant on
    2x2 cells, so its neighbouring-pixel residual is exactly zero; any camera or generator output is not.
    """
    up = nn.functional.interpolate(x[:, :, ::2, ::2], scale_factor=2.0, mode="nearest")
    return (x - up).abs().amax(dim=(1, 2, 3)) > tol


class DualNet(nn.Module):
    """A thumbnail branch and a native-resolution branch, summed in logit space, routed by the input.

    - ``thumb``: a small-image net (e.g. the CIFAKE model) on the input area-averaged to ``thumb_size``.
      For a thumbnail that the preprocessing enlarged by nearest neighbour to the crop, the average
      recovers the original pixels exactly, so a warm-started thumbnail branch answers as its source did.
    - ``native``: a :class:`ForensicNet` on the crop's native pixels, added only for rows with
      :func:`native_detail`; an enlarged thumbnail has no native pixels to judge, and gets nothing from it.

    So one model serves 32 px thumbnails and 512 px+ uploads, and the native branch can be trained from a
    few hundred full-size labelled uploads while the thumbnail branch keeps what it knew (the closed loop).
    """

    def __init__(
        self, num_classes: int, input_size: int, thumb_arch: str, thumb_size: int, native: str
    ) -> None:
        super().__init__()
        if input_size % thumb_size or (input_size // thumb_size) & (input_size // thumb_size - 1):
            raise ConfigError(f"input_size: {input_size} must be {thumb_size} px times a power of two")
        self.factor = input_size // thumb_size
        self.thumb = build_model(thumb_arch, num_classes, thumb_size)
        self.native = build_model(native, num_classes, input_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        small = nn.functional.avg_pool2d(x, self.factor) if self.factor > 1 else x
        logits = self.thumb(small)
        detail = native_detail(x)
        if torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling() or torch.jit.is_tracing():
            # a static graph: the native branch on every row, masked (same numbers as below)
            return logits + self.native(x) * detail[:, None].to(logits.dtype)
        idx = detail.nonzero().squeeze(1)
        if len(idx) == 0:
            return logits
        return logits.index_add(0, idx, self.native(x[idx]).to(logits.dtype))


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
    return sorted(_COMPACT) + sorted(_FORENSIC) + sorted(_DUAL) + list(TORCHVISION_ARCHS)


def check_arch(arch: str, field: str = "arch") -> None:
    """Raise :class:`ConfigError` naming ``field`` when ``arch`` is unknown."""
    if arch not in available_archs():
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
    elif arch in _FORENSIC:
        if input_size % 8:
            raise ConfigError(f"input_size: {arch} needs a multiple of 8 px, got {input_size}")
        f_stem, f_widths, f_blocks = _FORENSIC[arch]
        model = ForensicNet(num_classes, f_stem, f_widths, f_blocks)
    elif arch in _DUAL:
        model = DualNet(num_classes, input_size, *_DUAL[arch])
    else:
        model = _torchvision_model(arch, num_classes)
    if weights:
        load_weights(model, weights)
    return model


def thumbnail_of(arch: str) -> tuple[str, int] | None:
    """``(thumbnail arch, its input size)`` of a dual network, else ``None`` (warm starts use it)."""
    return (_DUAL[arch][0], _DUAL[arch][1]) if arch in _DUAL else None


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
