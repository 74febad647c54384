"""Factors-of-variation images drawn procedurally like dSprites (Matthey et al. 2017).

Each image is one white sprite on black, binary (0/1), of `size` x `size` pixels (64 or
32), with five known generative factors on a full factorial grid:

    shape        3 values   square, ellipse, heart
    scale        6 values   linspace(0.5, 1, 6)
    orientation  40 values  2π k / 40, k = 0..39 (radians, counter-clockwise)
    position_x   32 values  linspace(0, 1, 32), left to right
    position_y   32 values  linspace(0, 1, 32), top to bottom (row order)

so 3 * 6 * 40 * 32 * 32 = 737,280 combinations, as dSprites' `latents_sizes` without its
one-valued colour. Combination number i (0 <= i < 737,280) is the mixed-radix number whose
digits are the factor indices, shape the slowest digit and position_y the fastest (dSprites'
`latents_bases`). Nothing stores all images (64x64 of them is 3 GB as uint8): every image is
rendered on demand from its factors, and `iter_sprites` streams blocks.

Rendering. A pixel (row i, column j) has its centre at p = ((j + ½) / size, (i + ½) / size)
in frame units ([0, 1] both ways, independent of size, so 32x32 samples the same shapes at
half the resolution). The sprite's centre is c = m + (1 - 2m) (x, y) with margin m = 0.2,
and a pixel is white when its local coordinates

    (u, v) = R(-θ) (p_x - c_x, c_y - p_y) / (scale ρ),     ρ = 0.18 (frame units)

(y taken upwards, so θ turns counter-clockwise on screen) fall inside the unit shape:

    square   max(|u|, |v|) <= 1/√2                     (area 2)
    ellipse  u² + (v / ½)² <= 1                        (area π/2)
    heart    (a² + b² - 1)³ - a² b³ <= 0,  a = κu, b = κv - β   (area ≈ 2.19)

with κ = 1.2935 and β = 0.2935, which put the heart's area centroid at the origin and its
farthest point at radius 1. Every shape lies in the unit disc, so at scale 1 the sprite
stays within ρ = 0.18 of its centre: inside [0.02, 0.98] of the frame at any position and
orientation, and its area in frame units is (scale ρ)² times the unit shape's.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
from sklearn.utils import Bunch

from latentkit._validation import RANDOM_STATE, Interval, Options, as_generator
from latentkit.datasets.synthetic import check_arg
from latentkit.exceptions import InvalidInputError, InvalidParameterError


class SpriteFactor(NamedTuple):
    """One generative factor: its name and its values (values[k] is index k's value)."""

    name: str
    values: tuple[float, ...]

    @property
    def size(self) -> int:
        return len(self.values)


SHAPE_NAMES = ("square", "ellipse", "heart")
#: the five factors, in the order of the columns of a factor array
SPRITE_FACTORS = (
    SpriteFactor("shape", (0.0, 1.0, 2.0)),
    SpriteFactor("scale", tuple(np.linspace(0.5, 1.0, 6).tolist())),
    SpriteFactor("orientation", tuple((2 * math.pi * np.arange(40) / 40).tolist())),
    SpriteFactor("position_x", tuple(np.linspace(0.0, 1.0, 32).tolist())),
    SpriteFactor("position_y", tuple(np.linspace(0.0, 1.0, 32).tolist())),
)
FACTOR_NAMES = tuple(factor.name for factor in SPRITE_FACTORS)
FACTOR_SIZES = tuple(factor.size for factor in SPRITE_FACTORS)
N_COMBINATIONS = math.prod(FACTOR_SIZES)  # 737,280
IMAGE_SIZES = (32, 64)

# Mixed-radix place values: factor f's digit counts prod(FACTOR_SIZES[f+1:]) combinations.
_PLACE_VALUES = np.array([math.prod(FACTOR_SIZES[f + 1:]) for f in range(len(FACTOR_SIZES))],
                         dtype=np.int64)
_FACTOR_VALUES = [np.asarray(factor.values) for factor in SPRITE_FACTORS]
_MARGIN = 0.2  # the sprite's centre ranges over [m, 1 - m] of the frame
_RADIUS = 0.18  # frame units spanned by the unit disc at scale 1
_SQUARE_HALF_SIDE = 1 / math.sqrt(2)
_ELLIPSE_MINOR = 0.5
_HEART_ZOOM = 1.2935  # κ: the heart curve's farthest point from its centroid, numerically
_HEART_SHIFT = 0.2935  # β: the heart region's area centroid above the curve's origin
_RENDER_CHUNK = 128  # images rendered at once: temporaries of 2 MB each stay in cache

_DESCR = (
    "Procedural sprites like dSprites (Matthey, Higgins, Hassabis & Lerchner 2017): binary "
    "images of one white sprite on black with five independent factors, shape (square, "
    "ellipse, heart), scale (6 values in [0.5, 1]), orientation (40 values in [0, 2π)), "
    "position x and position y (32 values each in [0, 1]): 737,280 combinations, rendered "
    "on demand (latentkit.datasets.factors). Drawn here, not the DeepMind files: shapes and "
    "pixel values differ from dSprites; no licence restrictions."
)

__all__ = ["FACTOR_NAMES", "FACTOR_SIZES", "N_COMBINATIONS", "SHAPE_NAMES", "SPRITE_FACTORS",
           "SpriteFactor", "factor_values", "factors_to_index", "index_to_factors",
           "iter_sprites", "make_sprites", "render_sprites", "sample_factors",
           "sample_with_fixed_factor", "sprites_by_index"]


# -- validation at the boundary -----------------------------------------------------------


def _check_size(size) -> None:
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size not in IMAGE_SIZES:
        raise InvalidParameterError(f"argument 'size' must be 32 or 64 (pixels per side); got "
                                    f"{size!r}.")


def _check_factor_indices(factor_indices, name: str = "factor_indices") -> np.ndarray:
    """factor_indices : (n_samples, 5) integers, column f in [0, FACTOR_SIZES[f])."""
    given = np.asarray(factor_indices)
    n_factors = len(FACTOR_SIZES)
    if given.ndim != 2 or given.shape[1] != n_factors:
        raise InvalidInputError(f"argument {name!r} must have shape (n_samples, {n_factors}), "
                                f"one column per factor {FACTOR_NAMES}; got shape {given.shape}.")
    if given.size and not np.issubdtype(given.dtype, np.integer):
        raise InvalidInputError(f"argument {name!r} must hold integer factor indices; got "
                                f"dtype {given.dtype}.")
    given = given.astype(np.int64, copy=False)
    for column, (factor_name, size) in enumerate(zip(FACTOR_NAMES, FACTOR_SIZES, strict=True)):
        bad = np.flatnonzero((given[:, column] < 0) | (given[:, column] >= size))
        if bad.size:
            raise InvalidInputError(
                f"argument {name!r}: column {column} ({factor_name}) must lie in [0, {size - 1}]; "
                f"row {bad[0]} holds {given[bad[0], column]}.")
    return given


def _check_flat_indices(indices) -> np.ndarray:
    """indices : (n_samples,) integers in [0, N_COMBINATIONS)."""
    given = np.asarray(indices)
    if given.ndim != 1 or (given.size and not np.issubdtype(given.dtype, np.integer)):
        raise InvalidInputError(f"argument 'indices' must be a 1-D array of integers (combination "
                                f"numbers); got shape {given.shape}, dtype {given.dtype}.")
    bad = np.flatnonzero((given < 0) | (given >= N_COMBINATIONS))
    if bad.size:
        raise InvalidInputError(f"argument 'indices' must lie in [0, {N_COMBINATIONS - 1}]; "
                                f"entry {bad[0]} is {given[bad[0]]}.")
    return given.astype(np.int64, copy=False)


def _as_dtype(dtype) -> np.dtype | None:
    try:
        return None if dtype is None else np.dtype(dtype)
    except (TypeError, ValueError):
        return None


def _factor_position(factor) -> int:
    if isinstance(factor, str):
        check_arg("factor", factor, Options(*FACTOR_NAMES))
        return FACTOR_NAMES.index(factor)
    check_arg("factor", factor, Interval(int, 0, len(FACTOR_NAMES) - 1), Options(*FACTOR_NAMES))
    return int(factor)


# -- indices and values -------------------------------------------------------------------


def index_to_factors(indices) -> np.ndarray:
    """Factor indices : (n_samples, 5) int64 of combination numbers : (n_samples,) in
    [0, 737,280); the mixed-radix digits, shape slowest, position_y fastest."""
    return _digits(_check_flat_indices(indices))


def factors_to_index(factor_indices) -> np.ndarray:
    """Combination numbers : (n_samples,) int64 of factor indices : (n_samples, 5);
    i = Σ_f digit_f · Π_{g>f} size_g, the inverse of `index_to_factors`."""
    return _check_factor_indices(factor_indices) @ _PLACE_VALUES


def factor_values(factor_indices) -> np.ndarray:
    """Factor values : (n_samples, 5) float64 of factor indices : (n_samples, 5): the shape
    number (0 square, 1 ellipse, 2 heart), scale, orientation in radians, x and y in [0, 1]."""
    given = _check_factor_indices(factor_indices)
    return _values(given)


def _values(factor_indices: np.ndarray) -> np.ndarray:
    return np.stack([values[factor_indices[:, f]] for f, values in enumerate(_FACTOR_VALUES)],
                    axis=1)


def sample_factors(n_samples: int, random_state=None) -> np.ndarray:
    """Factor indices : (n_samples, 5) int64 of combinations drawn uniformly with replacement.

    Combination i = ⌊737,280 u⌋ with u ~ U[0, 1) (one double per draw, bias < 1e-10), so the
    draws of one generator form one stream: n draws then m draws equal n + m draws at once.
    """
    check_arg("n_samples", n_samples, Interval(int, 1, None))
    check_arg("random_state", random_state, *RANDOM_STATE)
    return _draw_factors(as_generator(random_state), n_samples)


def _draw_factors(rng: np.random.Generator, n_samples: int) -> np.ndarray:
    flat = np.floor(rng.random(n_samples) * N_COMBINATIONS).astype(np.int64)
    return _digits(flat)


def _digits(flat: np.ndarray) -> np.ndarray:
    """(n, 5) mixed-radix digits of valid combination numbers flat : (n,) int64."""
    return (flat[:, None] // _PLACE_VALUES) % np.asarray(FACTOR_SIZES)


# -- rendering kernels --------------------------------------------------------------------


def pixel_centres(size: int) -> np.ndarray:
    """(size,) float64: the pixel centres (k + ½) / size in frame units [0, 1]."""
    return (np.arange(size) + 0.5) / size


def local_coordinates(values: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The sprites' local coordinates (u, v) at every pixel centre, each (n, size, size)
    float32, from factor values : (n, 5) (see the module docstring):

        (u, v) = R(-θ) (p_x - c_x, c_y - p_y) / (scale ρ),  c = m + (1 - 2m) (x, y)

    R(-θ) (dx, dy) = (cos θ dx + sin θ dy, -sin θ dx + cos θ dy): each term depends on the
    column (dx) or on the row (dy) alone, so (u, v) is one broadcast sum of (n, 1, size)
    and (n, size, 1) arrays.
    """
    scale, theta, x, y = (values[:, f] for f in range(1, 5))
    centres = pixel_centres(size)
    zoom = 1.0 / (scale * _RADIUS)
    dx = (centres[None, :] - (_MARGIN + (1 - 2 * _MARGIN) * x)[:, None]) * zoom[:, None]
    dy = ((_MARGIN + (1 - 2 * _MARGIN) * y)[:, None] - centres[None, :]) * zoom[:, None]
    cos, sin = np.cos(theta)[:, None], np.sin(theta)[:, None]
    by_column = np.stack([cos * dx, -sin * dx]).astype(np.float32)[:, :, None, :]
    by_row = np.stack([sin * dy, cos * dy]).astype(np.float32)[:, :, :, None]
    u, v = by_column + by_row
    return u, v


def inside_square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """max(|u|, |v|) <= 1/√2, elementwise: a square of side √2 (area 2) inscribed in the
    unit circle."""
    half = np.float32(_SQUARE_HALF_SIDE)
    return (np.abs(u) <= half) & (np.abs(v) <= half)


def inside_ellipse(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """u² + (v / ½)² <= 1, elementwise: semi-axes 1 along u and ½ along v (area π/2)."""
    v = v / np.float32(_ELLIPSE_MINOR)
    return u * u + v * v <= 1


def inside_heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(a² + b² - 1)³ - a² b³ <= 0 with a = κu, b = κv - β, elementwise: the heart curve,
    lobes towards +v, its area centroid at the origin and its farthest point at radius 1."""
    a = u * np.float32(_HEART_ZOOM)
    b = v * np.float32(_HEART_ZOOM) + np.float32(_HEART_SHIFT)
    a2, b2 = a * a, b * b
    circle = a2 + b2 - 1
    return circle * circle * circle <= a2 * b2 * b


_INSIDE = (inside_square, inside_ellipse, inside_heart)  # by shape index


def _render_block(factor_indices: np.ndarray, size: int, out: np.ndarray) -> None:
    """Write the sprites of factor_indices : (n, 5) into out : (n, size, size) uint8."""
    values = _values(factor_indices)
    for shape, inside in enumerate(_INSIDE):
        rows = np.flatnonzero(factor_indices[:, 0] == shape)
        if rows.size:
            out[rows] = inside(*local_coordinates(values[rows], size))


def render_sprites(factor_indices, *, size: int = 64) -> np.ndarray:
    """Images : (n_samples, size, size) uint8 in {0, 1} of factor indices : (n_samples, 5).

    Vectorized over the images and pixels, _RENDER_CHUNK (128) images at a time: each float32
    temporary holds 128 size² values (2 MB at 64 px), whatever n_samples, and stays in cache.
    size : 64 or 32 (the same shapes sampled at half the resolution, still binary).
    """
    _check_size(size)
    return _render(_check_factor_indices(factor_indices), size)


def _render(factor_indices: np.ndarray, size: int) -> np.ndarray:
    """render_sprites without the checks: factor_indices (n, 5) int64, valid."""
    images = np.zeros((len(factor_indices), size, size), dtype=np.uint8)
    for start in range(0, len(factor_indices), _RENDER_CHUNK):
        stop = start + _RENDER_CHUNK
        _render_block(factor_indices[start:stop], size, images[start:stop])
    return images


def sprites_by_index(indices, *, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(images : (n, size, size) uint8, factor indices : (n, 5) int64) of combination
    numbers : (n,) in [0, 737,280), e.g. a range: `sprites_by_index(range(a, b))` is the
    block [a, b) of the full factorial set in its mixed-radix order."""
    _check_size(size)
    factors = index_to_factors(np.asarray(indices))
    return _render(factors, size), factors


# -- public generators --------------------------------------------------------------------


def make_sprites(n_samples: int = 10_000, *, size: int = 64, dtype=np.float32,
                 random_state=None, return_X_y: bool = False):
    """Sprite images with their factors, combinations drawn uniformly with replacement.

    Returns a Bunch with data : (n_samples, size²) of `dtype` (float32, float64 or uint8) in
    {0, 1}, the images row-major; images : (n_samples, size, size), a view of data;
    factors : (n_samples, 5) int64 factor indices; factor_values : (n_samples, 5) float64
    (see `factor_values`); factor_names, factor_sizes, shape_names, image_shape,
    feature_names and DESCR. With return_X_y=True, returns (data, factors).

    The draws are `sample_factors(n_samples, random_state)`, so the first m rows of
    make_sprites(n) equal make_sprites(m) for the same seed, and so do the blocks of
    iter_sprites(b, n_samples=n) for any block size b.
    """
    check_arg("n_samples", n_samples, Interval(int, 1, None))
    _check_size(size)
    if _as_dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.uint8)):
        raise InvalidParameterError(f"argument 'dtype' must be float32, float64 or uint8; got "
                                    f"{dtype!r}.")
    check_arg("random_state", random_state, *RANDOM_STATE)
    check_arg("return_X_y", return_X_y, Options(True, False))
    factors = _draw_factors(as_generator(random_state), n_samples)
    data = np.empty((n_samples, size * size), dtype=dtype)
    for start in range(0, n_samples, _RENDER_CHUNK):
        block = factors[start:start + _RENDER_CHUNK]
        data[start:start + len(block)] = _render(block, size).reshape(len(block), -1)
    if return_X_y:
        return data, factors
    return Bunch(
        data=data, images=data.reshape(n_samples, size, size), factors=factors,
        factor_values=_values(factors), factor_names=list(FACTOR_NAMES),
        factor_sizes=FACTOR_SIZES, shape_names=list(SHAPE_NAMES), image_shape=(size, size),
        feature_names=[f"pixel_{row}_{col}" for row in range(size) for col in range(size)],
        DESCR=_DESCR)


def iter_sprites(batch_size: int, *, n_samples: int | None = None, size: int = 64,
                 random_state=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Blocks (images : (b, size, size) uint8, factor indices : (b, 5) int64), b <= batch_size.

    n_samples None and random_state None: all 737,280 combinations once, in the mixed-radix
    order of `index_to_factors`. n_samples None with a random_state: all of them once in a
    random order (one permutation of 737,280 int64, 5.9 MB, is the only whole-set array).
    n_samples given: that many uniform draws with replacement, the same as
    make_sprites(n_samples, random_state=...) block by block. Memory: one block of images
    plus the render temporaries of `render_sprites`, however many images in all.
    """
    check_arg("batch_size", batch_size, Interval(int, 1, None))
    check_arg("n_samples", n_samples, Interval(int, 1, None), Options(None))
    _check_size(size)
    check_arg("random_state", random_state, *RANDOM_STATE)
    return _stream(batch_size, n_samples, size, random_state)


def _stream(batch_size: int, n_samples, size: int, random_state):
    """The generator behind iter_sprites (arguments already checked)."""
    if n_samples is not None:
        rng = as_generator(random_state)
        for start in range(0, n_samples, batch_size):
            factors = _draw_factors(rng, min(batch_size, n_samples - start))
            yield _render(factors, size), factors
        return
    order = None
    if random_state is not None:
        order = as_generator(random_state).permutation(N_COMBINATIONS)
    for start in range(0, N_COMBINATIONS, batch_size):
        stop = min(start + batch_size, N_COMBINATIONS)
        block = np.arange(start, stop) if order is None else order[start:stop]
        factors = _digits(block)
        yield _render(factors, size), factors


def sample_with_fixed_factor(factor, value_index: int, n_samples: int, *, size: int = 64,
                             random_state=None) -> tuple[np.ndarray, np.ndarray]:
    """(images : (n_samples, size, size) uint8, factor indices : (n_samples, 5) int64) with
    one factor held at `value_index` and the other four drawn uniformly and independently,
    as the FactorVAE score and latent traversals need.

    factor : a name in FACTOR_NAMES or its column number 0..4.
    """
    column = _factor_position(factor)
    check_arg("value_index", value_index, Interval(int, 0, FACTOR_SIZES[column] - 1))
    check_arg("n_samples", n_samples, Interval(int, 1, None))
    _check_size(size)
    check_arg("random_state", random_state, *RANDOM_STATE)
    factors = _draw_factors(as_generator(random_state), n_samples)
    factors[:, column] = value_index
    return _render(factors, size), factors
