"""Tests for latentkit.datasets.factors: the dSprites-like factorial grid, its enumeration,
and the rendered geometry against closed forms (areas, centroids, symmetries).

Geometry in frame units (see the module docstring): the sprite's centre is
c = m + (1 - 2m) (x, y) with m = 0.2, and scale s spans s ρ frame units with ρ = 0.18, so a
unit shape of area A covers A (s ρ size)² pixels. Pixel-centre sampling of a region is
unbiased over sub-pixel offsets, so averaged over many positions (offsets spread by the
1.24 px spacing) and a few orientations the pixel count matches the closed form within 1.5%.
"""

import itertools
import math
import tracemalloc

import numpy as np
import pytest

from latentkit import datasets
from latentkit.datasets import factors as F
from latentkit.exceptions import InvalidInputError, InvalidParameterError

MARGIN, RADIUS = 0.2, 0.18
SQUARE, ELLIPSE, HEART = 0, 1, 2
UNIT_AREA = {SQUARE: 2.0, ELLIPSE: math.pi / 2}  # square of side √2, ellipse semi-axes 1, ½


def grid(**fixed) -> np.ndarray:
    """Factor indices (n, 5) of every combination of the given values (an int or a list
    per factor; a factor not named takes index 0)."""
    axes = [np.atleast_1d(fixed.get(name, 0)) for name in F.FACTOR_NAMES]
    return np.array(list(itertools.product(*axes)), dtype=np.int64)


def centroids(images: np.ndarray) -> np.ndarray:
    """(n, 2) mean (column, row) of the white pixels of images (n, S, S)."""
    n, size, _ = images.shape
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    mass = images.reshape(n, -1).sum(axis=1)
    flat = images.reshape(n, -1).astype(float)
    return np.stack([flat @ cols.ravel(), flat @ rows.ravel()], axis=1) / mass[:, None]


# -- the factorial grid -------------------------------------------------------------------


def test_grid_is_dsprites_latents_without_colour():
    assert F.FACTOR_NAMES == ("shape", "scale", "orientation", "position_x", "position_y")
    assert F.FACTOR_SIZES == (3, 6, 40, 32, 32) and F.N_COMBINATIONS == 737_280
    values = [np.array(f.values) for f in F.SPRITE_FACTORS]
    np.testing.assert_allclose(values[1], [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    np.testing.assert_allclose(np.diff(values[2]), 2 * np.pi / 40)
    assert values[2][0] == 0 and values[2][-1] < 2 * np.pi
    for position in values[3:]:
        assert position[0] == 0 and position[-1] == 1
        np.testing.assert_allclose(np.diff(position), 1 / 31)
    picked = np.array([[2, 5, 10, 31, 0]])
    np.testing.assert_allclose(F.factor_values(picked), [[2, 1.0, np.pi / 2, 1.0, 0.0]])


def test_every_combination_has_exactly_one_index():
    every = np.arange(F.N_COMBINATIONS)
    factors = F.index_to_factors(every)
    # numpy's own row-major mixed radix (shape slowest) is the independent truth
    np.testing.assert_array_equal(factors, np.stack(np.unravel_index(every, F.FACTOR_SIZES), 1))
    np.testing.assert_array_equal(F.factors_to_index(factors), every)
    for column, size in enumerate(F.FACTOR_SIZES):  # each value in 737,280 / size rows
        assert np.all(np.bincount(factors[:, column]) == F.N_COMBINATIONS // size)
    rng = np.random.default_rng(0)
    random_factors = np.stack([rng.integers(size, size=500) for size in F.FACTOR_SIZES], 1)
    flat = F.factors_to_index(random_factors)
    np.testing.assert_array_equal(flat, np.ravel_multi_index(random_factors.T, F.FACTOR_SIZES))
    np.testing.assert_array_equal(F.index_to_factors(flat), random_factors)


def test_block_of_the_enumeration_matches_its_factors():
    images, factors = F.sprites_by_index(range(123_456, 123_556), size=32)
    np.testing.assert_array_equal(factors, F.index_to_factors(np.arange(123_456, 123_556)))
    np.testing.assert_array_equal(images, F.render_sprites(factors, size=32))


# -- rendering: binary, in the frame, the closed-form geometry ----------------------------


@pytest.mark.parametrize("size", [32, 64])
def test_images_are_binary_and_inside_the_frame(size):
    extremes = grid(shape=[0, 1, 2], scale=[0, 5], orientation=list(range(40)),
                    position_x=[0, 31], position_y=[0, 31])
    images = F.render_sprites(extremes, size=size)
    assert images.dtype == np.uint8 and images.shape == (len(extremes), size, size)
    assert set(np.unique(images)) == {0, 1}
    assert images.reshape(len(images), -1).sum(axis=1).min() > 0  # every sprite visible
    border = np.concatenate([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], 1)
    assert not border.any()


@pytest.mark.parametrize("shape", [SQUARE, ELLIPSE])
def test_area_matches_closed_form_and_grows_as_scale_squared(shape):
    size = 64
    combos = grid(shape=shape, scale=list(range(6)), orientation=[0, 3, 7, 13],
                  position_x=list(range(32)), position_y=list(range(0, 32, 2)))
    areas = F.render_sprites(combos, size=size).sum(axis=(1, 2)).reshape(6, -1).mean(axis=1)
    scales = np.linspace(0.5, 1.0, 6)
    expected = UNIT_AREA[shape] * (scales * RADIUS * size) ** 2
    # measured errors stay under 0.3%: 1.5% leaves room, yet a 2% wrong scale would fail
    np.testing.assert_allclose(areas, expected, rtol=0.015)
    np.testing.assert_allclose(areas / areas[-1], scales**2, rtol=0.015)


def test_area_is_monotone_in_scale_for_every_shape():
    rng = np.random.default_rng(1)
    for shape in (SQUARE, ELLIPSE, HEART):
        others = grid(orientation=rng.integers(40, size=4), position_x=rng.integers(32, size=4),
                      position_y=rng.integers(32, size=3))
        areas = []
        for scale in range(6):
            combos = others.copy()
            combos[:, 0], combos[:, 1] = shape, scale
            areas.append(F.render_sprites(combos).sum(axis=(1, 2)))
        assert np.all(np.diff(np.array(areas), axis=0) > 0), shape


def test_shapes_are_distinguishable_at_equal_scale():
    combos = grid(shape=[0, 1, 2], scale=5, orientation=[0, 7], position_x=[5, 20],
                  position_y=[3, 30])
    images = F.render_sprites(combos).reshape(3, -1, 64 * 64).astype(int)
    square, ellipse, heart = images.sum(axis=2)
    assert np.all(square > ellipse) and np.all(heart > ellipse)
    for a, b in itertools.combinations(range(3), 2):
        differing = np.abs(images[a] - images[b]).sum(axis=1)
        assert differing.min() > 0.1 * images[a].sum(axis=1).max(), (a, b)


@pytest.mark.parametrize("size", [32, 64])
def test_centroid_tracks_the_position(size):
    rng = np.random.default_rng(2)
    combos = np.stack([rng.integers(n, size=600) for n in F.FACTOR_SIZES], axis=1)
    found = centroids(F.render_sprites(combos, size=size))
    positions = F.factor_values(combos)[:, 3:]
    expected = (MARGIN + (1 - 2 * MARGIN) * positions) * size - 0.5  # pixel index units
    assert np.abs(found - expected).max() < 1.0
    # linear in the index: the slope is the grid spacing in pixels
    for column in (0, 1):
        slope = np.polyfit(combos[:, 3 + column], found[:, column], 1)[0]
        assert slope == pytest.approx((1 - 2 * MARGIN) * size / 31, rel=0.01)


def test_rotation_symmetries_separate_the_shapes():
    base = grid(shape=[0, 1, 2], scale=[1, 5], position_x=[3, 17], position_y=[8, 29])
    rotated = {}
    for quarter_turns in (1, 2):
        turned = base.copy()
        turned[:, 2] = 10 * quarter_turns  # orientation index 10 is π/2
        rotated[quarter_turns] = F.render_sprites(turned).astype(int)
    upright = F.render_sprites(base).astype(int)
    changed = {k: np.abs(v - upright).sum(axis=(1, 2)).reshape(3, -1) for k, v in rotated.items()}
    area = upright.sum(axis=(1, 2)).reshape(3, -1)
    assert changed[1][SQUARE].max() <= 4 and changed[2][SQUARE].max() <= 4
    assert changed[2][ELLIPSE].max() <= 4  # an ellipse is symmetric under a half turn ...
    assert np.all(changed[1][ELLIPSE] > 0.3 * area[ELLIPSE])  # ... not a quarter turn
    assert np.all(changed[1][HEART] > 0.1 * area[HEART])
    assert np.all(changed[2][HEART] > 0.1 * area[HEART])


def test_orientation_turns_counter_clockwise_on_screen():
    combos = grid(shape=ELLIPSE, scale=5, orientation=[0, 5, 10], position_x=16, position_y=16)
    images = F.render_sprites(combos)
    rows, cols = np.nonzero(images[0])
    assert np.var(cols) > 3 * np.var(rows)  # θ = 0: the major axis is horizontal
    rows, cols = np.nonzero(images[2])
    assert np.var(rows) > 3 * np.var(cols)  # θ = π/2: vertical
    rows, cols = np.nonzero(images[1])
    assert np.corrcoef(cols, rows)[0, 1] < -0.5  # θ = π/4: up (row falls) to the right


def test_half_resolution_samples_the_same_shapes():
    rng = np.random.default_rng(3)
    combos = np.stack([rng.integers(n, size=300) for n in F.FACTOR_SIZES], axis=1)
    small, large = F.render_sprites(combos, size=32), F.render_sprites(combos, size=64)
    ratio = small.sum() / large.sum()
    assert ratio == pytest.approx(0.25, rel=0.03)
    frame_small = (centroids(small) + 0.5) / 32
    frame_large = (centroids(large) + 0.5) / 64
    assert np.abs(frame_small - frame_large).max() < 1 / 32


# -- generators: determinism, streaming, fixed factors ------------------------------------


def test_same_seed_same_data_other_seed_other_data():
    first = datasets.make_sprites(40, size=32, random_state=5)
    again = datasets.make_sprites(40, size=32, random_state=5)
    other = datasets.make_sprites(40, size=32, random_state=6)
    np.testing.assert_array_equal(first.data, again.data)
    np.testing.assert_array_equal(first.factors, again.factors)
    assert not np.array_equal(first.factors, other.factors)
    assert not np.array_equal(first.data, other.data)
    assert first.data.shape == (40, 32 * 32) and first.data.dtype == np.float32
    assert first.images.shape == (40, 32, 32) and np.shares_memory(first.images, first.data)
    np.testing.assert_array_equal(first.images, F.render_sprites(first.factors, size=32))
    np.testing.assert_allclose(first.factor_values, F.factor_values(first.factors))
    assert first.factor_names == list(F.FACTOR_NAMES) and first.image_shape == (32, 32)
    X, y = datasets.make_sprites(40, size=32, random_state=5, return_X_y=True)
    np.testing.assert_array_equal(X, first.data)
    np.testing.assert_array_equal(y, first.factors)


def test_draws_are_uniform_over_each_factor():
    factors = F.sample_factors(60_000, random_state=7)
    for column, size in enumerate(F.FACTOR_SIZES):
        counts = np.bincount(factors[:, column], minlength=size)
        expected = len(factors) / size
        chi2 = ((counts - expected) ** 2 / expected).sum()
        assert chi2 < size - 1 + 5 * math.sqrt(2 * (size - 1)), F.FACTOR_NAMES[column]


def test_streaming_random_draws_equals_one_call():
    whole = datasets.make_sprites(100, size=32, dtype=np.uint8, random_state=11)
    blocks = list(datasets.iter_sprites(37, n_samples=100, size=32, random_state=11))
    assert [len(images) for images, _ in blocks] == [37, 37, 26]
    assert all(images.shape[1:] == (32, 32) and len(f) == len(images) for images, f in blocks)
    np.testing.assert_array_equal(np.concatenate([b[0] for b in blocks]), whole.images)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in blocks]), whole.factors)
    prefix = datasets.make_sprites(30, size=32, dtype=np.uint8, random_state=11)
    np.testing.assert_array_equal(prefix.images, whole.images[:30])


def _factors_only(monkeypatch):
    """Render nothing (a 1x1 black image per sprite): the streams' index logic alone, so a
    whole pass over the 737,280 combinations takes a second, not a minute."""
    monkeypatch.setattr(F, "_render",
                        lambda factors, size: np.zeros((len(factors), 1, 1), np.uint8))


def test_streaming_enumerates_the_whole_set_once_in_order(monkeypatch):
    images, factors = next(datasets.iter_sprites(500, size=32))
    np.testing.assert_array_equal(factors, F.index_to_factors(np.arange(500)))
    np.testing.assert_array_equal(images, F.render_sprites(factors, size=32))
    _factors_only(monkeypatch)
    seen = 0
    for images, factors in datasets.iter_sprites(50_000, size=32):
        assert len(images) == len(factors) <= 50_000
        np.testing.assert_array_equal(F.factors_to_index(factors),
                                      np.arange(seen, seen + len(factors)))
        seen += len(factors)
    assert seen == F.N_COMBINATIONS


def test_shuffled_epoch_covers_the_whole_set_once_and_is_seeded(monkeypatch):
    _factors_only(monkeypatch)

    def epoch(seed):
        blocks = datasets.iter_sprites(100_000, random_state=seed)
        return np.concatenate([F.factors_to_index(factors) for _, factors in blocks])

    drawn = epoch(3)
    np.testing.assert_array_equal(np.sort(drawn), np.arange(F.N_COMBINATIONS))
    assert not np.array_equal(drawn, np.arange(F.N_COMBINATIONS))
    np.testing.assert_array_equal(drawn, epoch(3))
    assert not np.array_equal(drawn, epoch(4))


def _peak_bytes(n_blocks: int, batch_size: int) -> int:
    stream = datasets.iter_sprites(batch_size, n_samples=n_blocks * batch_size, random_state=0)
    tracemalloc.start()
    for _ in stream:
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_streaming_memory_is_bounded_by_one_block():
    block_bytes = 64 * 64 * 64  # 64 images of 64x64 uint8
    short, long = _peak_bytes(2, 64), _peak_bytes(12, 64)
    # render temporaries: about ten float32 arrays of a block's pixels, whatever the count
    assert long < 60 * block_bytes
    assert long < 1.5 * short


def test_fixed_factor_batches_hold_one_factor():
    images, factors = datasets.sample_with_fixed_factor("scale", 2, 64, size=32,
                                                        random_state=0)
    assert images.shape == (64, 32, 32) and np.all(factors[:, 1] == 2)
    assert all(len(np.unique(factors[:, f])) > 1 for f in (0, 2, 3, 4))
    np.testing.assert_array_equal(images, F.render_sprites(factors, size=32))
    _, by_number = datasets.sample_with_fixed_factor(4, 31, 10, random_state=1)
    assert np.all(by_number[:, 4] == 31)


# -- bad arguments ------------------------------------------------------------------------


@pytest.mark.parametrize("call, match", [
    (lambda: F.render_sprites(np.zeros((2, 5), int), size=48), "'size' must be 32 or 64"),
    (lambda: F.render_sprites(np.zeros((2, 4), int)), r"shape \(n_samples, 5\)"),
    (lambda: F.render_sprites(np.zeros((2, 5))), "integer factor indices"),
    (lambda: F.render_sprites([[0, 6, 0, 0, 0]]), r"column 1 \(scale\) must lie in \[0, 5\]"),
    (lambda: F.render_sprites([[0, 0, 0, 0, -1]]), r"position_y\) must lie in \[0, 31\]"),
    (lambda: F.index_to_factors([F.N_COMBINATIONS]), r"'indices' must lie in \[0, 737279\]"),
    (lambda: F.factors_to_index([[3, 0, 0, 0, 0]]), r"shape\) must lie in \[0, 2\]"),
    (lambda: datasets.make_sprites(0), "'n_samples'"),
    (lambda: datasets.make_sprites(5, dtype=np.int32), "'dtype' must be float32"),
    (lambda: datasets.make_sprites(5, random_state=-1), "'random_state'"),
    (lambda: datasets.iter_sprites(0), "'batch_size'"),
    (lambda: datasets.iter_sprites(8, n_samples=2.5), "'n_samples'"),
    (lambda: datasets.sample_with_fixed_factor("colour", 0, 8), "'factor' must be"),
    (lambda: datasets.sample_with_fixed_factor("orientation", 40, 8), "'value_index'"),
    (lambda: datasets.sample_with_fixed_factor(5, 0, 8), "'factor' must be"),
])
def test_bad_arguments_raise_clear_errors(call, match):
    with pytest.raises((InvalidInputError, InvalidParameterError), match=match):
        call()


# -- the command line's "sprites" ---------------------------------------------------------


def test_cli_sprites_carry_their_factors():
    from latentkit.cli.data import load_data

    data = load_data("sprites", max_rows=50)
    assert data.X.shape == (50, 64 * 64) and data.image_shape == (64, 64) and data.bundled
    factors, names = data.factors, data.factor_names
    assert names == tuple(F.FACTOR_NAMES) and factors.shape == (50, 5)
    np.testing.assert_array_equal(data.X, F.render_sprites(factors).reshape(50, -1))
    assert data.head(20).factors.shape == (20, 5)
    assert load_data("iris").factors is None
