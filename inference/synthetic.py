"""Synthetic visual-inspection images: close-ups of machined metal plates.

Each image is a camera's close-up of one brushed-metal plate in its fixture,
slightly shifted and rotated; sometimes the plate's edge (with the dark belt
beyond) or a drilled hole is in view. Light varies (gain, gradient, a
specular band, vignetting), and the image passes through a slightly soft
lens, sensor noise and JPEG compression. Defective parts carry a
``scratch`` (thin, smooth, bright core with dark flanks), a ``crack`` (dark,
jagged, sometimes branched) or a ``stain`` (a soft rust or oil blob).

Ambiguity is deliberate: a share of defects is subtle (faint, short, tiny),
and a share of ``ok`` parts carries cosmetic marks within tolerance (dust,
a faint polishing line, a light smudge). The two overlap, so a good model is
not perfect and its confidence spreads out.

``DRIFTS`` are production changes that hurt a model trained on the default
look: ``lighting`` (dimmer, warm colour cast, steeper gradient; defects get
missed), ``new_defect_look`` (dark scratches, straighter paler cracks, bluish
water-mark rings instead of rust), ``blur`` (a defocused lens) and
``new_surface`` (a bead-blasted matte finish instead of brushed; false alarms
and lower confidence). Against the demo model (about 0.9 accuracy) they bring
accuracy down to roughly 0.55, 0.55, 0.85 and 0.7.

Everything is a pure function of the ``numpy.random.Generator`` passed in, so a
seed reproduces a data set exactly.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

DEMO_LABELS: tuple[str, ...] = ("ok", "scratch", "crack", "stain")
DRIFTS: tuple[str, ...] = ("lighting", "new_defect_look", "blur", "new_surface")
DEFAULT_CLASS_WEIGHTS: Mapping[str, float] = {
    "ok": 0.55,
    "scratch": 0.15,
    "crack": 0.15,
    "stain": 0.15,
}

SUBTLE_DEFECT_SHARE = 0.15
COSMETIC_MARK_SHARE = 0.2
EDGE_IN_VIEW_SHARE = 0.1
HOLE_IN_VIEW_SHARE = 0.05
_REFERENCE_SIZE = 128.0

FloatArray = np.ndarray


@dataclass(frozen=True)
class _Part:
    """Where the part lies: centre (pixels), angle (radians), half extents, holes (local)."""

    center_x: float
    center_y: float
    angle: float
    half_width: float
    half_height: float
    corner_radius: float
    holes: tuple[tuple[float, float, float], ...]

    def to_local(self, xs: FloatArray, ys: FloatArray) -> tuple[FloatArray, FloatArray]:
        dx, dy = xs - self.center_x, ys - self.center_y
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        return cos * dx + sin * dy, -sin * dx + cos * dy


def generate_image(
    label: str,
    rng: np.random.Generator,
    *,
    size: int = 128,
    drift: str | None = None,
) -> Image.Image:
    """One ``size`` x ``size`` RGB inspection image showing a part of class ``label``.

    ``label`` must be in ``DEMO_LABELS`` and ``drift`` ``None`` or in ``DRIFTS``.
    The result depends only on the arguments and the generator's state.
    """
    if label not in DEMO_LABELS:
        raise ValueError(f"unknown label {label!r}; expected one of {DEMO_LABELS}")
    if drift is not None and drift not in DRIFTS:
        raise ValueError(f"unknown drift {drift!r}; expected None or one of {DRIFTS}")
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, got {size}")

    scale = size / _REFERENCE_SIZE
    xs, ys = _pixel_grid(size)
    part = _random_part(rng, size)
    u, v = part.to_local(xs, ys)
    coverage = _part_coverage(part, u, v)

    surface = _metal_surface(rng, u, v, size, matte=drift == "new_surface")
    _add_edge_bevel(surface, part, u, v)
    _add_dust(rng, surface, xs, ys, scale)
    if label == "ok":
        if rng.random() < COSMETIC_MARK_SHARE:
            _add_cosmetic_mark(rng, surface, part, xs, ys, scale)
    else:
        visibility = _defect_visibility(rng)
        _DEFECT_PAINTERS[label](rng, surface, part, xs, ys, scale, visibility, drift)

    background = _belt(rng, size)
    scene = coverage[..., None] * surface + (1.0 - coverage[..., None]) * background
    lit = _apply_lighting(rng, scene, xs, ys, size, drift)
    return _through_camera(rng, lit, scale, drift)


def generate_dataset(
    n: int,
    *,
    seed: int,
    size: int = 128,
    drift: str | None = None,
    class_weights: Mapping[str, float] | None = None,
) -> list[tuple[Image.Image, str]]:
    """``n`` (image, label) pairs, identical for identical arguments.

    Class counts follow ``class_weights`` (default ``DEFAULT_CLASS_WEIGHTS``:
    ok 55 %, each defect 15 %) as closely as whole numbers allow, in a shuffled
    order. Each image draws from its own child generator, so image ``i`` does
    not depend on how much randomness the images before it used.
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    if drift is not None and drift not in DRIFTS:
        raise ValueError(f"unknown drift {drift!r}; expected None or one of {DRIFTS}")
    weights = dict(DEFAULT_CLASS_WEIGHTS if class_weights is None else class_weights)
    labels = _label_sequence(n, weights, np.random.default_rng(seed))
    children = np.random.SeedSequence(seed).spawn(n)
    return [
        (generate_image(label, np.random.default_rng(child), size=size, drift=drift), label)
        for label, child in zip(labels, children, strict=True)
    ]


def _label_sequence(n: int, weights: Mapping[str, float], rng: np.random.Generator) -> list[str]:
    unknown = set(weights) - set(DEMO_LABELS)
    if unknown:
        raise ValueError(f"unknown labels in class_weights: {sorted(unknown)}")
    if any(weight < 0 for weight in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError("class_weights must be non-negative with a positive sum")
    names = [label for label in DEMO_LABELS if weights.get(label, 0) > 0]
    total = sum(weights[label] for label in names)
    exact = [n * weights[label] / total for label in names]
    counts = [math.floor(value) for value in exact]
    by_remainder = sorted(range(len(names)), key=lambda i: exact[i] - counts[i], reverse=True)
    for index in by_remainder[: n - sum(counts)]:
        counts[index] += 1
    sequence = [label for label, count in zip(names, counts, strict=True) for _ in range(count)]
    order = rng.permutation(len(sequence))
    return [sequence[i] for i in order]


def _pixel_grid(size: int) -> tuple[FloatArray, FloatArray]:
    coordinates = np.arange(size, dtype=np.float32) + 0.5
    ys, xs = np.meshgrid(coordinates, coordinates, indexing="ij")
    return xs, ys


def _random_part(rng: np.random.Generator, size: int) -> _Part:
    """A plate larger than the field of view, slightly rotated and shifted.

    In ``EDGE_IN_VIEW_SHARE`` of the images the fixture is off enough that one
    edge of the plate (and the dark belt beyond it) enters the frame; in
    ``HOLE_IN_VIEW_SHARE`` a drilled hole does.
    """
    angle = rng.uniform(-0.15, 0.15)
    half = 0.9 * size
    offset = np.array(rng.uniform(-0.04, 0.04, 2) * size)
    if rng.random() < EDGE_IN_VIEW_SHARE:
        edge_distance = rng.uniform(0.3, 0.45) * size
        axis = int(rng.integers(0, 2))
        offset[axis] = rng.choice([-1.0, 1.0]) * (half - edge_distance)
    cos, sin = math.cos(angle), math.sin(angle)
    center_x = size / 2 + cos * offset[0] - sin * offset[1]
    center_y = size / 2 + sin * offset[0] + cos * offset[1]
    holes: tuple[tuple[float, float, float], ...] = ()
    if rng.random() < HOLE_IN_VIEW_SHARE:
        hole_x, hole_y = rng.uniform(0.2, 0.8, 2) * size
        dx, dy = hole_x - center_x, hole_y - center_y
        holes = ((cos * dx + sin * dy, -sin * dx + cos * dy, rng.uniform(0.07, 0.12) * size),)
    return _Part(
        center_x=center_x,
        center_y=center_y,
        angle=angle,
        half_width=half,
        half_height=half,
        corner_radius=0.1 * size,
        holes=holes,
    )


def _signed_distance_to_part(part: _Part, u: FloatArray, v: FloatArray) -> FloatArray:
    """Negative inside the plate (and outside its holes), in pixels."""
    radius = part.corner_radius
    qx = np.abs(u) - part.half_width + radius
    qy = np.abs(v) - part.half_height + radius
    outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    distance = outside + np.minimum(np.maximum(qx, qy), 0) - radius
    for hole_u, hole_v, hole_radius in part.holes:
        distance = np.maximum(distance, hole_radius - np.hypot(u - hole_u, v - hole_v))
    return distance


def _part_coverage(part: _Part, u: FloatArray, v: FloatArray) -> FloatArray:
    return np.clip(0.5 - _signed_distance_to_part(part, u, v), 0.0, 1.0)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> FloatArray:
    """Zero-mean noise of roughly unit amplitude varying over ``size / cells`` pixels."""
    coarse = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    image = Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.float32)


def _noise_along(rng: np.random.Generator, coordinate: FloatArray, period: float) -> FloatArray:
    """1-D noise sampled at ``coordinate`` (pixels), one random knot every ``period`` pixels."""
    low, high = float(coordinate.min()) - period, float(coordinate.max()) + period
    knots = np.arange(low, high + period, period, dtype=np.float32)
    values = rng.standard_normal(knots.size).astype(np.float32)
    return np.interp(coordinate, knots, values).astype(np.float32)


def _metal_surface(
    rng: np.random.Generator, u: FloatArray, v: FloatArray, size: int, *, matte: bool
) -> FloatArray:
    """RGB reflectance of the plate: brushed along ``u`` (or bead-blasted when ``matte``)."""
    if matte:
        tone = rng.uniform(0.40, 0.50)
        grain = rng.standard_normal(u.shape).astype(np.float32)
        texture = 0.07 * grain + 0.04 * _smooth_noise(rng, size, 10)
    else:
        tone = rng.uniform(0.50, 0.68)
        streaks = _noise_along(rng, v, rng.uniform(0.6, 1.2))
        streak_strength = rng.uniform(0.008, 0.03) * (1.0 + 0.5 * _noise_along(rng, u, size / 3))
        texture = streak_strength * streaks + rng.uniform(0.01, 0.035) * _smooth_noise(rng, size, 5)
    tint = np.array(
        [rng.choice([0.98, 1.0, 1.02]), 1.0, rng.choice([0.98, 1.0, 1.03])], dtype=np.float32
    ) + rng.normal(0.0, 0.008, 3).astype(np.float32)
    return (tone + texture)[..., None] * tint


def _add_edge_bevel(surface: FloatArray, part: _Part, u: FloatArray, v: FloatArray) -> None:
    """A chamfer catches the light: a thin bright rim just inside the plate's outline."""
    inside_depth = -_signed_distance_to_part(part, u, v)
    rim = np.clip(1.0 - np.abs(inside_depth - 1.5) / 1.5, 0.0, 1.0)
    surface += 0.12 * rim[..., None]


def _belt(rng: np.random.Generator, size: int) -> FloatArray:
    tone = rng.uniform(0.08, 0.16)
    texture = 0.02 * rng.standard_normal((size, size)).astype(np.float32)
    colour = np.array([0.95, 1.0, 0.97], dtype=np.float32)
    return (tone + texture)[..., None] * colour


def _gaussian_profile(distance: FloatArray, width: float) -> FloatArray:
    return np.exp(-0.5 * (distance / width) ** 2)


def _polyline_distance(
    xs: FloatArray, ys: FloatArray, points: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Distance from every pixel to the polyline, and where along it (0..1) the nearest point is."""
    starts, ends = points[:-1], points[1:]
    segment = ends - starts
    length_squared = np.maximum((segment**2).sum(axis=1), 1e-6)
    px = xs[None] - starts[:, 0, None, None]
    py = ys[None] - starts[:, 1, None, None]
    along = np.clip(
        (px * segment[:, 0, None, None] + py * segment[:, 1, None, None])
        / length_squared[:, None, None],
        0.0,
        1.0,
    )
    distances = np.hypot(
        px - along * segment[:, 0, None, None], py - along * segment[:, 1, None, None]
    )
    nearest = distances.argmin(axis=0)
    distance = np.take_along_axis(distances, nearest[None], axis=0)[0]
    position = (nearest + np.take_along_axis(along, nearest[None], axis=0)[0]) / len(segment)
    return distance, position


def _window(points: FloatArray, margin: float, size: int) -> tuple[slice, slice]:
    """The (rows, columns) slice covering ``points`` (x, y) plus ``margin`` pixels, in frame."""
    low = np.floor(points.min(axis=0) - margin).astype(int)
    high = np.ceil(points.max(axis=0) + margin).astype(int) + 1
    low = np.clip(low, 0, size)
    high = np.clip(high, 0, size)
    return slice(low[1], max(low[1], high[1])), slice(low[0], max(low[0], high[0]))


def _defect_visibility(rng: np.random.Generator) -> float:
    """How strongly a defect shows: subtle for ``SUBTLE_DEFECT_SHARE`` of them, clear otherwise."""
    if rng.random() < SUBTLE_DEFECT_SHARE:
        return float(rng.uniform(0.12, 0.35))
    return float(rng.uniform(0.5, 1.0))


def _point_on_part(rng: np.random.Generator, part: _Part, size: int) -> tuple[float, float]:
    """A random image point well inside the plate, clear of holes and of the frame's border."""
    margin = 0.12 * size
    for _ in range(100):
        x, y = rng.uniform(margin, size - margin, 2)
        u, v = part.to_local(np.array([x]), np.array([y]))
        if _signed_distance_to_part(part, u, v)[0] < -0.06 * size:
            return float(x), float(y)
    return size / 2, size / 2


def _scratch_path(
    rng: np.random.Generator, start: tuple[float, float], length: float
) -> FloatArray:
    """A gently curved stroke: a quadratic Bezier sampled at 12 segments."""
    heading = rng.uniform(0, math.pi)
    direction = np.array([math.cos(heading), math.sin(heading)], dtype=np.float32)
    normal = np.array([-direction[1], direction[0]], dtype=np.float32)
    middle = np.array(start, dtype=np.float32)
    first, last = middle - direction * length / 2, middle + direction * length / 2
    control = middle + normal * rng.uniform(-0.15, 0.15) * length
    t = np.linspace(0.0, 1.0, 13, dtype=np.float32)[:, None]
    return (1 - t) ** 2 * first + 2 * (1 - t) * t * control + t**2 * last


def _crack_path(
    rng: np.random.Generator, start: tuple[float, float], length: float, jaggedness: float
) -> FloatArray:
    """Short steps zig-zagging around a slowly turning course: the look of a fracture line."""
    steps = max(6, int(length / 2.5))
    step_length = length / steps
    course = rng.uniform(0, 2 * math.pi)
    point = np.array(start, dtype=np.float32)
    points = [point.copy()]
    for _ in range(steps):
        course += rng.normal(0.0, 0.15)
        heading = course + rng.normal(0.0, jaggedness)
        point = point + step_length * np.array(
            [math.cos(heading), math.sin(heading)], dtype=np.float32
        )
        points.append(point.copy())
    return np.stack(points)


def _paint_scratch(
    rng: np.random.Generator,
    surface: FloatArray,
    part: _Part,
    xs: FloatArray,
    ys: FloatArray,
    scale: float,
    visibility: float,
    drift: str | None,
) -> None:
    size = xs.shape[0]
    length = rng.uniform(0.3, 0.7) * size * (0.5 + 0.5 * visibility)
    path = _scratch_path(rng, _point_on_part(rng, part, size), length)
    width = rng.uniform(1.3, 2.4) * scale * (0.6 + 0.4 * visibility)
    window = _window(path, 6 * width + 2, size)
    distance, position = _polyline_distance(xs[window], ys[window], path)
    if distance.size == 0:
        return
    fade = np.sin(np.pi * position) ** 0.4 * (1.0 + 0.3 * _noise_along(rng, position * 8, 1.0))
    if drift == "new_defect_look":
        width *= 1.8
        profile = -_gaussian_profile(distance, width) * rng.uniform(0.25, 0.45)
    else:
        profile = _gaussian_profile(distance, width) - 0.2 * _gaussian_profile(
            distance, 2.5 * width
        )
        profile *= rng.uniform(0.45, 0.7)
    surface[window] += (visibility * fade * profile)[..., None]


def _paint_crack(
    rng: np.random.Generator,
    surface: FloatArray,
    part: _Part,
    xs: FloatArray,
    ys: FloatArray,
    scale: float,
    visibility: float,
    drift: str | None,
) -> None:
    size = xs.shape[0]
    new_look = drift == "new_defect_look"
    length = rng.uniform(0.2, 0.45) * size * (0.5 + 0.5 * visibility)
    origin = _point_on_part(rng, part, size)
    paths = [_crack_path(rng, origin, length, 0.1 if new_look else 0.7)]
    if rng.random() < 0.4:
        branch_origin = tuple(paths[0][len(paths[0]) // 2])
        paths.append(_crack_path(rng, branch_origin, 0.5 * length, 0.7))
    width = rng.uniform(1.2, 2.0) * scale * (0.6 + 0.4 * visibility) * (1.6 if new_look else 1.0)
    darkness = rng.uniform(0.55, 0.8) * (0.5 if new_look else 1.0)
    for path in paths:
        window = _window(path, 8 * width + 2, size)
        distance, _ = _polyline_distance(xs[window], ys[window], path)
        shade = darkness * (
            _gaussian_profile(distance, width) + 0.3 * _gaussian_profile(distance, 3 * width)
        )
        if new_look:
            shade -= 0.25 * _gaussian_profile(distance, 2.5 * width)
        surface[window] *= (1.0 - visibility * np.clip(shade, -1.0, 0.95))[..., None]


def _paint_stain(
    rng: np.random.Generator,
    surface: FloatArray,
    part: _Part,
    xs: FloatArray,
    ys: FloatArray,
    scale: float,
    visibility: float,
    drift: str | None,
) -> None:
    size = xs.shape[0]
    cx, cy = _point_on_part(rng, part, size)
    radius = rng.uniform(0.07, 0.16) * size * (0.35 + 0.65 * visibility)
    window = _window(np.array([[cx, cy]], dtype=np.float32), 4 * radius + 2, size)
    wx, wy = xs[window], ys[window]
    blob = np.zeros_like(wx)
    for _ in range(int(rng.integers(2, 6))):
        ox, oy = rng.normal(0.0, 0.6 * radius, 2)
        r = radius * rng.uniform(0.5, 1.0)
        blob = np.maximum(blob, np.exp(-0.5 * ((wx - cx - ox) ** 2 + (wy - cy - oy) ** 2) / r**2))
    mask = np.clip((blob - 0.35) / 0.4, 0.0, 1.0)
    mask *= 1.0 + 0.2 * _smooth_noise(rng, size, 16)[window]
    if drift == "new_defect_look":
        ring = np.clip(4.0 * mask * (1.0 - mask), 0.0, 1.0)
        colour = np.array([0.42, 0.48, 0.62], dtype=np.float32)
        alpha = visibility * rng.uniform(0.3, 0.5) * np.clip(ring + 0.2 * mask, 0.0, 1.0)
    else:
        rust, oil = (0.62, 0.33, 0.12), (0.2, 0.15, 0.08)
        colour = np.array(rust if rng.random() < 0.6 else oil, dtype=np.float32)
        alpha = visibility * rng.uniform(0.5, 0.85) * np.clip(mask, 0.0, 1.0)
    surface[window] = surface[window] * (1.0 - alpha[..., None]) + colour * alpha[..., None]


_DEFECT_PAINTERS = {
    "scratch": _paint_scratch,
    "crack": _paint_crack,
    "stain": _paint_stain,
}


def _add_dust(
    rng: np.random.Generator, surface: FloatArray, xs: FloatArray, ys: FloatArray, scale: float
) -> None:
    """A few specks of dust, dark or bright: present on good and bad parts alike."""
    size = xs.shape[0]
    for _ in range(int(rng.integers(0, 4))):
        x, y = rng.uniform(0, size, 2)
        width = rng.uniform(0.4, 0.9) * scale
        window = _window(np.array([[x, y]], dtype=np.float32), 4 * width + 1, size)
        speck = _gaussian_profile(np.hypot(xs[window] - x, ys[window] - y), width)
        surface[window] += (rng.choice([-1.0, 1.0]) * rng.uniform(0.05, 0.2) * speck)[..., None]


def _add_cosmetic_mark(
    rng: np.random.Generator,
    surface: FloatArray,
    part: _Part,
    xs: FloatArray,
    ys: FloatArray,
    scale: float,
) -> None:
    """A mark within tolerance on an ``ok`` part: a defect's look at very low visibility."""
    kind = rng.choice(list(_DEFECT_PAINTERS))
    _DEFECT_PAINTERS[kind](rng, surface, part, xs, ys, scale, float(rng.uniform(0.03, 0.15)), None)


def _apply_lighting(
    rng: np.random.Generator,
    scene: FloatArray,
    xs: FloatArray,
    ys: FloatArray,
    size: int,
    drift: str | None,
) -> FloatArray:
    """Gain, a linear gradient, a soft specular band and vignetting; a colour cast when drifted."""
    dimmed = drift == "lighting"
    gain = rng.uniform(0.45, 0.65) if dimmed else rng.uniform(0.85, 1.15)
    gradient_strength = rng.uniform(0.25, 0.45) if dimmed else rng.uniform(0.0, 0.25)
    heading = rng.uniform(0, 2 * math.pi)
    ramp = ((xs - size / 2) * math.cos(heading) + (ys - size / 2) * math.sin(heading)) / size
    band_heading = rng.uniform(0, math.pi)
    band_offset = rng.uniform(-0.3, 0.3) * size
    band_distance = (
        (xs - size / 2) * math.cos(band_heading) + (ys - size / 2) * math.sin(band_heading)
    ) - band_offset
    band = rng.uniform(0.0, 0.15) * _gaussian_profile(band_distance, rng.uniform(0.08, 0.2) * size)
    radius_squared = ((xs - size / 2) ** 2 + (ys - size / 2) ** 2) / (size / 2) ** 2
    vignette = 1.0 - rng.uniform(0.0, 0.2) * radius_squared
    light = gain * (1.0 + 2.0 * gradient_strength * ramp) * vignette
    cast = (
        np.array([1.12, 1.0, 0.78], dtype=np.float32)
        if dimmed
        else np.ones(3, dtype=np.float32) + rng.normal(0.0, 0.01, 3).astype(np.float32)
    )
    return (scene * light[..., None] + band[..., None]) * cast


def _through_camera(
    rng: np.random.Generator, linear: FloatArray, scale: float, drift: str | None
) -> Image.Image:
    """Lens blur, sensor noise, 8-bit quantisation and JPEG compression."""
    image = Image.fromarray(_to_uint8(linear))
    blur_radius = rng.uniform(1.2, 2.0) if drift == "blur" else rng.uniform(0.2, 0.7)
    image = image.filter(ImageFilter.GaussianBlur(blur_radius * scale))
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    noise_level = rng.uniform(0.006, 0.025)
    noisy = pixels + noise_level * rng.standard_normal(pixels.shape).astype(np.float32)
    buffer = io.BytesIO()
    Image.fromarray(_to_uint8(noisy)).save(buffer, format="JPEG", quality=int(rng.integers(80, 96)))
    buffer.seek(0)
    with Image.open(buffer) as compressed:
        return compressed.convert("RGB")


def _to_uint8(values: FloatArray) -> np.ndarray:
    return (np.clip(values, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# --- A second task, unlike the demo: arrows, where orientation is the class -------------

ARROW_LABELS: tuple[str, ...] = ("left", "right", "up", "down")


def generate_arrow(direction: str, rng: np.random.Generator, *, size: int = 32) -> Image.Image:
    """A coloured arrow pointing ``direction`` on a noisy coloured background.

    Position, length, thickness and colours vary; the only thing that tells the classes
    apart is which way the arrow points, so a horizontal flip turns ``left`` into
    ``right`` and a vertical flip ``up`` into ``down``. Pure in ``rng``.
    """
    if direction not in ARROW_LABELS:
        raise ValueError(f"direction must be one of {ARROW_LABELS}, got {direction!r}")
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    background = rng.uniform(0, 255, 3)
    colour = (background + rng.uniform(90, 165, 3) * rng.choice([-1, 1], 3)) % 256
    image = np.empty((size, size, 3), dtype=np.float32)
    image[:] = background
    length = rng.uniform(0.45, 0.75) * size
    thickness = rng.uniform(0.07, 0.14) * size
    head = rng.uniform(0.3, 0.45) * length
    cx, cy = size / 2 + rng.uniform(-0.12, 0.12, 2) * size
    # along: position along the arrow, tip at +length/2; across: distance from the axis
    along, across = {
        "right": (xs - cx, ys - cy),
        "left": (cx - xs, ys - cy),
        "down": (ys - cy, xs - cx),
        "up": (cy - ys, xs - cx),
    }[direction]
    half = length / 2
    shaft = (along >= -half) & (along <= half - head) & (np.abs(across) <= thickness / 2)
    tip_room = half - along
    point = (along > half - head) & (tip_room >= 0) & (np.abs(across) <= tip_room * 0.9)
    image[shaft | point] = colour
    image += rng.normal(0, 12, image.shape)
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))


def generate_arrows(n: int, *, seed: int, size: int = 32) -> list[tuple[Image.Image, str]]:
    """``n`` arrows, directions in turn, reproducible for a seed."""
    rng = np.random.default_rng(seed)
    return [
        (generate_arrow(ARROW_LABELS[k % 4], rng, size=size), ARROW_LABELS[k % 4]) for k in range(n)
    ]
