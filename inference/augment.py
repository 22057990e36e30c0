"""Training-time augmentation, chosen per workflow and per run, applied on batches.

Django-free. An ``Augmentation`` says which transformations are on and how strong each
is; ``augment_batch`` applies it to a uint8 NCHW batch with a seeded ``torch.Generator``
(reproducible for a seed). The default keeps orientation: no flips and no rotation, only
a mild brightness and contrast jitter, because for many tasks the direction *is* the
class (characters, arrows, oriented parts), and a flip silently turns one class into
another. Turn flips or rotation on for tasks whose label survives them (surface
textures, defects seen from above): the ``FLIPS`` preset is what the demo model used.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

# The largest value of each numeric augmentation (the smallest is 0: off). Forms show these
# as hints; ``Augmentation`` refuses anything outside them, on every path.
LIMITS: dict[str, float] = {
    "rotation": 180.0,
    "brightness": 0.9,
    "contrast": 0.9,
    "colour": 0.9,
    "crop": 0.5,
}


@dataclass(frozen=True)
class Augmentation:
    """Which augmentations are on (0 or False: off).

    ``hflip``/``vflip``: mirror left-right / top-bottom with probability 1/2.
    ``rotation``: rotate by a uniform angle in [-rotation, rotation] degrees.
    ``brightness``/``contrast``/``colour``: multiply brightness, contrast (about the mean)
    and each channel's gain by a uniform factor in [1 - x, 1 + x].
    ``crop``: random crop keeping a uniform share in [1 - crop, 1] of each side, scaled
    back to the input size.
    """

    hflip: bool = False
    vflip: bool = False
    rotation: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    colour: float = 0.0
    crop: float = 0.0

    def __post_init__(self) -> None:
        for name, top in LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"augmentation.{name}: must be a number from 0 to {top:g}")
            if not 0.0 <= float(value) <= top or math.isnan(float(value)):
                raise ValueError(f"augmentation.{name}: must be from 0 to {top:g}, got {value!r}")
        for name in ("hflip", "vflip"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"augmentation.{name}: must be true or false")

    @property
    def is_none(self) -> bool:
        return self == NONE

    @property
    def changes_orientation(self) -> bool:
        return self.hflip or self.vflip or self.rotation > 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Augmentation:
        """From JSON data; unknown keys and bad values raise ``ValueError`` naming them."""
        if not isinstance(data, dict):
            raise ValueError('augmentation: must be an object such as {"hflip": false}')
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"augmentation: unknown keys {unknown} (known: {', '.join(sorted(known))})"
            )
        return cls(**data)

    def describe(self) -> str:
        parts = []
        if self.hflip:
            parts.append("horizontal flips")
        if self.vflip:
            parts.append("vertical flips")
        if self.rotation:
            parts.append(f"rotation ±{self.rotation:g}°")
        for name in ("brightness", "contrast", "colour"):
            if getattr(self, name):
                parts.append(f"{name} ±{getattr(self, name):.0%}")
        if self.crop:
            parts.append(f"random crop to {1 - self.crop:.0%} to 100% of each side")
        return ", ".join(parts) if parts else "none"


NONE = Augmentation()
DEFAULT = Augmentation(brightness=0.1, contrast=0.1)
"""Orientation-safe: no flips, no rotation; mild brightness and contrast jitter."""
FLIPS = Augmentation(hflip=True, vflip=True)
"""Horizontal and vertical flips only: the demo model's (surface defects seen from above)."""


def _uniform(count: int, spread: float, generator: torch.Generator) -> torch.Tensor:
    return 1.0 + (torch.rand(count, generator=generator) * 2.0 - 1.0) * spread


def augment_batch(
    batch: torch.Tensor, augmentation: Augmentation, generator: torch.Generator
) -> torch.Tensor:
    """Apply ``augmentation`` to a uint8 NCHW batch; [0, 1] float32 out, same shape.

    Every random draw comes from ``generator`` (on the CPU) in a fixed order, so the same
    seed gives the same batch. With ``NONE`` this is just the conversion to [0, 1].
    """
    images = batch.to(torch.float32) / 255.0
    count, device = images.shape[0], images.device

    def per_image(values: torch.Tensor) -> torch.Tensor:
        return values.to(device).view(count, 1, 1, 1)

    if augmentation.hflip:
        images = torch.where(
            per_image(torch.rand(count, generator=generator) < 0.5), images.flip(-1), images
        )
    if augmentation.vflip:
        images = torch.where(
            per_image(torch.rand(count, generator=generator) < 0.5), images.flip(-2), images
        )
    if augmentation.rotation or augmentation.crop:
        angle = (torch.rand(count, generator=generator) * 2 - 1) * math.radians(
            augmentation.rotation
        )
        scale = 1.0 - torch.rand(count, generator=generator) * augmentation.crop
        shift_room = 1.0 - scale
        shift_x = (torch.rand(count, generator=generator) * 2 - 1) * shift_room
        shift_y = (torch.rand(count, generator=generator) * 2 - 1) * shift_room
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        theta = torch.stack(
            [torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1
        ).to(device)
        grid = torch.nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
        images = torch.nn.functional.grid_sample(
            images, grid, mode="bilinear", padding_mode="reflection", align_corners=False
        )
    if augmentation.brightness:
        images = images * per_image(_uniform(count, augmentation.brightness, generator))
    if augmentation.contrast:
        mean = images.mean(dim=(1, 2, 3), keepdim=True)
        factor = per_image(_uniform(count, augmentation.contrast, generator))
        images = (images - mean) * factor + mean
    if augmentation.colour:
        gains = 1.0 + (torch.rand(count, images.shape[1], generator=generator) * 2 - 1) * (
            augmentation.colour
        )
        images = images * gains.to(device).view(count, images.shape[1], 1, 1)
    return images.clamp(0.0, 1.0)
