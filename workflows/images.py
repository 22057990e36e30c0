"""Validation of uploaded images: nothing is stored until the bytes are a sound image."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import imagehash
from PIL import Image, UnidentifiedImageError

from kernel.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from workflows.models import PHASH_BANDS

FORMAT_EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff"}


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int
    byte_size: int
    sha256: str
    phash: str = ""

    @property
    def extension(self) -> str:
        return FORMAT_EXTENSIONS.get(self.format, self.format.lower())


def image_validate(
    *, data: bytes, allowed_formats: tuple[str, ...], max_bytes: int, max_pixels: int
) -> ImageInfo:
    """Check that ``data`` is a complete image in one of ``allowed_formats``.

    Opens with an explicit format list (Pillow never guesses beyond it), refuses a
    decompression bomb from the header alone, then decodes every pixel so that a
    truncated or corrupt file is refused here and not in the worker.
    """
    if not data:
        raise InvalidInput("image: the file is empty", field="image")
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"image: {len(data)} bytes is over the limit of {max_bytes} bytes", field="image"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(allowed_formats)) as image:
                image_format = image.format or ""
                width, height = image.size
                if width * height > max_pixels:
                    raise InvalidInput(
                        f"image: {width}x{height} pixels is over the limit of {max_pixels} "
                        "pixels (a possible decompression bomb)",
                        field="image",
                    )
                image.load()
                phash = image_phash(image)
    except InvalidInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidInput(
            f"image: refused as a possible decompression bomb ({exc})", field="image"
        ) from exc
    except UnidentifiedImageError as exc:
        if _is_known_image_format(data):
            raise UnsupportedMediaType(
                "image: this image format is not accepted; allowed formats are "
                + ", ".join(allowed_formats),
                field="image",
            ) from exc
        raise InvalidInput(
            "image: the file is not an image in an accepted format ("
            + ", ".join(allowed_formats)
            + ")",
            field="image",
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput(
            f"image: the file is truncated or corrupt ({exc})", field="image"
        ) from exc
    return ImageInfo(
        format=image_format,
        width=width,
        height=height,
        byte_size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        phash=phash,
    )


# The perceptual hash is taken on the image shrunk (box filter) to at most this many
# pixels a side first: the 64-bit DCT hash only looks at 32x32 anyway, and hashing a large
# photo directly would cost tens of milliseconds per upload (bench/phash_cost.py).
PHASH_PRESHRINK = 128


def image_phash(image: Image.Image) -> str:
    """The 64-bit perceptual hash (DCT, ``imagehash.phash``) as 16 hex digits.

    Identical images hash alike; re-encoded, resized or slightly re-lit copies land a few
    bits apart (docs/decisions.md D56 gives the measured distances).
    """
    small = image.convert("L")
    factor = max(small.width, small.height) // PHASH_PRESHRINK
    if factor > 1:
        small = small.reduce(factor)
    return str(imagehash.phash(small))


def phash_bands(phash: str) -> tuple[str, ...]:
    """The hash's digits cut into the near-copy lookup's bands (``PHASH_BANDS``)."""
    return tuple(phash[start - 1 : start - 1 + length] for start, length in PHASH_BANDS)


def phash_distance(first: str, second: str) -> int:
    """Hamming distance of two hex perceptual hashes (bits that differ)."""
    return (int(first, 16) ^ int(second, 16)).bit_count()


# Formats recognised only to say "not accepted" (415) rather than "not an image" (400).
# Only headers are parsed; none of these plugins runs an external program.
_RECOGNISED_ONLY = ("GIF", "ICO", "PPM", "PSD", "JPEG2000", "TGA", "PCX", "DDS", "QOI")


def _is_known_image_format(data: bytes) -> bool:
    """Whether the bytes are an image in a format we recognise but do not accept."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data), formats=list(_RECOGNISED_ONLY)):
                return True
    except Exception:  # noqa: BLE001 - any failure means "not an image Pillow knows"
        return False
