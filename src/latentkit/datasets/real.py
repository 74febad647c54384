"""Loaders for real datasets (DESIGN section 7; provenance in shared/data/SOURCES.md).

Every loader returns a ``sklearn.utils.Bunch`` with ``data`` : (n_samples, n_features),
``target`` : (n_samples,) or None when the data have no labels, ``feature_names`` and ``DESCR``
(provenance and licence); with ``return_X_y=True`` it returns ``(data, target)`` instead.
Files are found and sha256-checked by :func:`latentkit.datasets.find_data_file`.
"""

from __future__ import annotations

import gzip
import zlib
from typing import NamedTuple

import numpy as np
import sklearn.datasets
from sklearn.utils import Bunch

from latentkit._validation import RANDOM_STATE, Interval, Options, as_generator
from latentkit.datasets._paths import find_data_file
from latentkit.datasets.synthetic import check_arg
from latentkit.exceptions import InvalidInputError, InvalidParameterError


class _DataFile(NamedTuple):
    relpath: str
    sha256: str
    url: str | None


_RDATASETS = (
    "https://raw.githubusercontent.com/vincentarelbundock/Rdatasets/"
    "1dcc2bf5f955cc1224a3e1307256e1fe86b68dae/csv/datasets/"
)
_CVDF_MNIST = "https://storage.googleapis.com/cvdf-datasets/mnist/"

_FAITHFUL = _DataFile(
    "faithful/faithful.csv",
    "5043db1e2c51c8e8fd67e0868c768ae589770cc76ad0ac0c5b7afd1fca31fc57",
    _RDATASETS + "faithful.csv",
)
_STATSMODELS = (
    "https://raw.githubusercontent.com/statsmodels/statsmodels/"
    "82c59e378bdfb5ae324006c477954879ad3e24be/statsmodels/datasets/"
)
_NILE = _DataFile(
    "nile/nile.csv",
    "88e97bea7249e5832a85e41aec6ce4b8f7b1b14aae930c8363da7f193286b598",
    _STATSMODELS + "nile/nile.csv",
)
_MACRODATA = _DataFile(
    "macrodata/macrodata.csv",
    "d93c0d3a7a77ef83c3af14e46032bb1d02ae3a512b22ab94159a8ca226fcf708",
    _STATSMODELS + "macrodata/macrodata.csv",
)
_MNIST_SHA256 = {  # file stem -> sha256 of the gzip'd file
    "train-images-idx3": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
_MNIST = {
    stem: _DataFile(f"mnist/{stem}-ubyte.gz", digest, f"{_CVDF_MNIST}{stem}-ubyte.gz")
    for stem, digest in _MNIST_SHA256.items()
}
# The shipped .amat.gz files were re-compressed locally (gzip -9 -n); the upstream Toronto
# files are uncompressed text, so no download address reproduces these exact bytes.
_BINARIZED_MNIST = {
    "train": _DataFile(
        "binarized_mnist/binarized_mnist_train.amat.gz",
        "af247bd6075cf9adc4715459dcd5f13eaa99a2c92d8d81379a05da94770b6c0e",
        None,
    ),
    "valid": _DataFile(
        "binarized_mnist/binarized_mnist_valid.amat.gz",
        "533b71bc0198f4d73c54ae5fe6c96fc08dc3cf1b3fae24c5521dbc0452507e38",
        None,
    ),
    "test": _DataFile(
        "binarized_mnist/binarized_mnist_test.amat.gz",
        "32a3c54d03504632bf9f131b4a148c7567aa6fc87da017049b044bdc14c2a0f2",
        None,
    ),
}

_MNIST_DESCR = (
    "MNIST handwritten digits (LeCun, Cortes & Burges), 28x28 grey-level images flattened "
    "row-major to 784 features, labels 0-9; 60,000 train and 10,000 test images. "
    "Licence: CC BY-SA 3.0 (credit Yann LeCun and Corinna Cortes). Files: the gzip'd IDX "
    "originals, sha256-checked (shared/data/SOURCES.md)."
)
_BINARIZED_MNIST_DESCR = (
    "Statically binarized MNIST (Larochelle & Murray, AISTATS 2011): one fixed Bernoulli "
    "sampling of the MNIST intensities, 50,000 train / 10,000 valid / 10,000 test images of "
    "784 binary pixels, no labels. A derivative of MNIST, so MNIST's terms apply (CC BY-SA "
    "3.0, credit LeCun and Cortes). Source and checks: shared/data/SOURCES.md."
)
_FAITHFUL_DESCR = (
    "Old Faithful geyser (R datasets::faithful; Haerdle 1991, Azzalini & Bowman 1990): 272 "
    "eruptions, eruption duration and waiting time to the next eruption, both in minutes. "
    "Copied from vincentarelbundock/Rdatasets; distributed with R (GPL-2 | GPL-3)."
)
_NILE_DESCR = (
    "Annual flow of the Nile at Aswan, 1871-1970, in 10^8 m^3 (Cobb 1978; the local-level "
    "example of Durbin & Koopman, Time Series Analysis by State Space Methods; R "
    "datasets::Nile). Copied from statsmodels' datasets (public domain)."
)
_MACRODATA_DESCR = (
    "US quarterly macroeconomic series 1959Q1-2009Q3 (203 quarters), compiled for "
    "statsmodels from FRED and BLS: real GDP, consumption, investment, government spending "
    "and disposable income (billions of chained 2005 USD, SAAR), CPI, M1, 3-month T-bill "
    "rate, unemployment rate, population, inflation and real interest rate. Public domain "
    "(US-government statistics), copied from statsmodels' datasets."
)

_MNIST_SIDE = 28
_AMAT_LINE = 2 * _MNIST_SIDE * _MNIST_SIDE  # 784 digits, each followed by ' ' or '\n'
_IDX_UBYTE = 0x08


def _finish(bunch: Bunch, return_X_y: bool):
    check_arg("return_X_y", return_X_y, Options(True, False))
    return (bunch.data, bunch.target) if return_X_y else bunch


def _read_gzip(path) -> bytes:
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except (OSError, EOFError, zlib.error) as error:
        raise InvalidInputError(
            f"{path} is not a readable gzip file ({error}); delete it and fetch it again."
        ) from error


def _check_float_dtype(dtype) -> None:
    try:
        resolved = None if dtype is None else np.dtype(dtype)
    except (TypeError, ValueError):
        resolved = None
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise InvalidParameterError(f"argument 'dtype' must be float32 or float64; got {dtype!r}.")


def _check_subset_args(n_samples, random_state) -> None:
    """Checks that need no data, done before any file is read."""
    check_arg("n_samples", n_samples, Interval(int, 1, None), Options(None))
    check_arg("random_state", random_state, *RANDOM_STATE)


def _subset(n_available: int, n_samples, random_state) -> np.ndarray | None:
    """Sorted indices of a uniform random subset of size `n_samples` (None: keep all)."""
    check_arg("n_samples", n_samples, Interval(int, 1, n_available), Options(None))
    if n_samples is None:
        return None
    rng = as_generator(random_state)
    return np.sort(rng.choice(n_available, size=n_samples, replace=False))


def parse_idx(raw: bytes, ndim: int, name: str = "IDX data") -> np.ndarray:
    """Decode uncompressed IDX bytes holding unsigned bytes in `ndim` dimensions.

    Layout: big-endian uint32 magic ``0x00000800 | ndim`` (type 0x08 = uint8), then `ndim`
    big-endian uint32 sizes, then the values in row-major order. Returns a read-only uint8
    array of those sizes; a wrong magic number or a truncated or padded body is a ValueError.
    """
    header = 4 * (1 + ndim)
    if len(raw) < header:
        raise InvalidInputError(
            f"{name}: {len(raw)} bytes is shorter than an IDX header ({header}).")
    magic = int(np.frombuffer(raw, dtype=">u4", count=1)[0])
    expected_magic = (_IDX_UBYTE << 8) | ndim
    if magic != expected_magic:
        raise InvalidInputError(
            f"{name}: IDX magic number is {magic:#010x}, expected {expected_magic:#010x} "
            f"(uint8 data in {ndim} dimensions); the file is corrupt or of another kind."
        )
    shape = tuple(int(n) for n in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise InvalidInputError(
            f"{name}: IDX header announces shape {shape} ({expected} bytes in all) but the "
            f"data hold {len(raw)} bytes; the file is truncated or corrupt."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def parse_amat(raw: bytes, name: str = "amat data") -> np.ndarray:
    """Decode binarized-MNIST ``.amat`` text: one image per line, 784 ASCII ``0``/``1``
    separated by single spaces and ending in a newline (1568 bytes a line).

    Returns pixels : (n_images, 784) uint8 in {0, 1}. Anything else is a ValueError.
    """
    if len(raw) == 0 or len(raw) % _AMAT_LINE:
        raise InvalidInputError(
            f"{name}: {len(raw)} bytes is not a whole number of {_AMAT_LINE}-byte lines; the "
            "file is truncated or not binarized-MNIST .amat text."
        )
    lines = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _AMAT_LINE)
    separators = lines[:, 1::2]
    pixels = lines[:, 0::2] - np.uint8(ord("0"))  # '0' -> 0, '1' -> 1, others wrap above 1
    if (
        np.any(separators[:, :-1] != ord(" "))
        or np.any(separators[:, -1] != ord("\n"))
        or np.any(pixels > 1)
    ):
        raise InvalidInputError(
            f"{name}: lines are not 784 '0'/'1' characters separated by spaces; the file is "
            "corrupt or not binarized-MNIST .amat text."
        )
    return pixels


def load_faithful(*, return_X_y: bool = False):
    """Old Faithful eruptions: data (272, 2) float64, columns [eruptions, waiting] in
    minutes; target None."""
    path = find_data_file(*_FAITHFUL)
    data = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(1, 2), dtype=np.float64)
    bunch = Bunch(
        data=data, target=None, feature_names=["eruptions", "waiting"], DESCR=_FAITHFUL_DESCR
    )
    return _finish(bunch, return_X_y)


def load_nile(*, return_X_y: bool = False):
    """Nile river flow: data (100, 1) float64 annual volume (10^8 m^3) for the years
    1871-1970 (``years`` (100,) int64); target None. One sequence: rows are time steps."""
    path = find_data_file(*_NILE)
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
    bunch = Bunch(data=table[:, 1:2], target=None, feature_names=["volume"],
                  years=table[:, 0].astype(np.int64), DESCR=_NILE_DESCR)
    return _finish(bunch, return_X_y)


def load_macrodata(*, return_X_y: bool = False):
    """US macroeconomic data: data (203, 12) float64 quarterly series 1959Q1-2009Q3
    (columns in ``feature_names``: realgdp, realcons, realinv, realgovt, realdpi, cpi, m1,
    tbilrate, unemp, pop, infl, realint), ``year`` and ``quarter`` (203,) int64; target
    None. One sequence: rows are time steps."""
    path = find_data_file(*_MACRODATA)
    with open(path, encoding="utf-8") as handle:
        header = [name.strip().strip('"') for name in handle.readline().split(",")]
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
    if table.shape[1] != len(header) or header[:2] != ["year", "quarter"]:
        raise InvalidInputError(f"{path}: expected columns year, quarter, then the series; got "
                         f"{header}.")
    bunch = Bunch(data=table[:, 2:], target=None, feature_names=header[2:],
                  year=table[:, 0].astype(np.int64), quarter=table[:, 1].astype(np.int64),
                  DESCR=_MACRODATA_DESCR)
    return _finish(bunch, return_X_y)


def load_mnist(
    split: str = "train",
    *,
    n_samples: int | None = None,
    binarize: bool = False,
    random_state=None,
    dtype=np.float32,
    return_X_y: bool = False,
):
    """MNIST: data (n_samples, 784) in [0, 1] (row-major 28x28 pixels), target (n_samples,)
    int64 digit labels.

    split : "train" (60,000 images) or "test" (10,000).
    n_samples : None for the whole split, else a uniform random subset of that size, without
        stratification, in file order; the same `random_state` gives the same subset.
    binarize : threshold the scaled intensities, 1.0 where x > 0.5 else 0.0.
    dtype : float32 (default) or float64.
    """
    check_arg("split", split, Options("train", "test"))
    check_arg("binarize", binarize, Options(True, False))
    _check_float_dtype(dtype)
    _check_subset_args(n_samples, random_state)
    prefix = "train" if split == "train" else "t10k"
    images_file = _MNIST[f"{prefix}-images-idx3"]
    labels_file = _MNIST[f"{prefix}-labels-idx1"]
    images = parse_idx(_read_gzip(find_data_file(*images_file)), 3, images_file.relpath)
    labels = parse_idx(_read_gzip(find_data_file(*labels_file)), 1, labels_file.relpath)
    if images.shape[1:] != (_MNIST_SIDE, _MNIST_SIDE) or len(images) != len(labels):
        raise InvalidInputError(
            f"MNIST {split}: images {images.shape} and labels {labels.shape} do not match."
        )
    index = _subset(len(images), n_samples, random_state)
    if index is not None:
        images, labels = images[index], labels[index]
    pixels = images.reshape(len(images), -1)
    if binarize:
        data = (pixels >= 128).astype(dtype)  # x = p / 255 > 0.5  <=>  p >= 128
    else:
        data = pixels.astype(dtype)
        data /= 255
    bunch = Bunch(
        data=data,
        target=labels.astype(np.int64),
        feature_names=_pixel_names(_MNIST_SIDE),
        target_names=np.arange(10),
        image_shape=(_MNIST_SIDE, _MNIST_SIDE),
        DESCR=_MNIST_DESCR,
    )
    return _finish(bunch, return_X_y)


def load_binarized_mnist(
    split: str = "train",
    *,
    n_samples: int | None = None,
    random_state=None,
    return_X_y: bool = False,
):
    """Statically binarized MNIST: data (n_samples, 784) float32 in {0, 1}; target None.

    split : "train" (50,000 images), "valid" (10,000) or "test" (10,000).
    n_samples : None for the whole split, else a uniform random subset of that size in file
        order; the same `random_state` gives the same subset.
    """
    check_arg("split", split, Options(*_BINARIZED_MNIST))
    _check_subset_args(n_samples, random_state)
    data_file = _BINARIZED_MNIST[split]
    pixels = parse_amat(_read_gzip(find_data_file(*data_file)), data_file.relpath)
    index = _subset(len(pixels), n_samples, random_state)
    if index is not None:
        pixels = pixels[index]
    bunch = Bunch(
        data=pixels.astype(np.float32),
        target=None,
        feature_names=_pixel_names(_MNIST_SIDE),
        image_shape=(_MNIST_SIDE, _MNIST_SIDE),
        DESCR=_BINARIZED_MNIST_DESCR,
    )
    return _finish(bunch, return_X_y)


def _pixel_names(side: int) -> list[str]:
    return [f"pixel_{row}_{col}" for row in range(side) for col in range(side)]


def _sklearn(name: str, descr: str, return_X_y: bool, **extra):
    raw = getattr(sklearn.datasets, name)()
    bunch = Bunch(
        data=np.asarray(raw.data, dtype=np.float64),
        target=np.asarray(raw.target, dtype=np.int64),
        feature_names=list(raw.feature_names),
        target_names=np.asarray(raw.target_names),
        DESCR=f"{descr} Bundled with scikit-learn; see sklearn.datasets.{name}.",
        **extra,
    )
    return _finish(bunch, return_X_y)


def load_digits(*, return_X_y: bool = False):
    """Optical handwritten digits (UCI, scikit-learn bundle): data (1797, 64) float64 grey
    levels 0-16 of 8x8 images, target (1797,) int64 labels 0-9."""
    descr = "UCI optical recognition of handwritten digits, 8x8 images, 10 classes (CC BY 4.0)."
    return _sklearn("load_digits", descr, return_X_y, image_shape=(8, 8))


def load_iris(*, return_X_y: bool = False):
    """Fisher's iris (UCI, scikit-learn bundle): data (150, 4) float64 in cm, target (150,)
    int64 species 0-2."""
    descr = "Fisher's iris (1936): 150 flowers, 4 measurements in cm, 3 species (CC BY 4.0)."
    return _sklearn("load_iris", descr, return_X_y)


def load_wine(*, return_X_y: bool = False):
    """Wine recognition (UCI, scikit-learn bundle): data (178, 13) float64 chemical
    analyses, target (178,) int64 cultivar 0-2."""
    descr = "UCI wine recognition: 178 wines, 13 chemical analyses, 3 cultivars (CC BY 4.0)."
    return _sklearn("load_wine", descr, return_X_y)
