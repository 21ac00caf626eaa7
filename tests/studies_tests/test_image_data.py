from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studies._image_data import (
    DataFileMissing,
    load_cifar10,
    load_digits_offline,
    load_mnist_offline,
    load_tiny_imagenet,
    read_cifar10_batch,
    read_cifar10_classes,
)

CIFAR_CLASSES = [
    b"airplane",
    b"automobile",
    b"bird",
    b"cat",
    b"deer",
    b"dog",
    b"frog",
    b"horse",
    b"ship",
    b"truck",
]


# --- Writers of the official formats ---------------------------------------------------------
# The official CIFAR-10 batches were written by Python 2's cPickle (protocol 2) with numpy 1:
# str keys and payloads are SHORT_BINSTRING/BINSTRING opcodes and the array is rebuilt through
# numpy.core.multiarray._reconstruct. Python 3 cannot write that byte stream, so it is
# assembled here opcode by opcode.


def _py2_str(b: bytes) -> bytes:
    if len(b) < 256:
        return b"U" + bytes([len(b)]) + b
    return b"T" + struct.pack("<i", len(b)) + b


def _py2_int(i: int) -> bytes:
    if 0 <= i < 256:
        return b"K" + bytes([i])
    if 0 <= i < 65536:
        return b"M" + struct.pack("<H", i)
    return b"J" + struct.pack("<i", i)


def _py2_uint8_array(a: np.ndarray) -> bytes:
    assert a.dtype == np.uint8
    dtype = (
        b"cnumpy\ndtype\n"
        + _py2_str(b"u1")
        + _py2_int(0)
        + _py2_int(1)
        + b"\x87R"
        + b"("
        + _py2_int(3)
        + _py2_str(b"|")
        + b"NNN"
        + b"J\xff\xff\xff\xffJ\xff\xff\xff\xff"
        + _py2_int(0)
        + b"tb"
    )
    shape = b"(" + b"".join(_py2_int(s) for s in a.shape) + b"t"
    return (
        b"cnumpy.core.multiarray\n_reconstruct\nc"
        + b"numpy\nndarray\n"
        + _py2_int(0)
        + b"\x85"
        + _py2_str(b"b")
        + b"\x87R"
        + b"("
        + _py2_int(1)
        + shape
        + dtype
        + b"\x89"
        + _py2_str(a.tobytes())
        + b"tb"
    )


def _py2_value(v) -> bytes:
    if isinstance(v, np.ndarray):
        return _py2_uint8_array(v)
    if isinstance(v, list):
        return b"](" + b"".join(_py2_value(x) for x in v) + b"e"
    if isinstance(v, int):
        return _py2_int(v)
    return _py2_str(v)


def py2_pickle(d: dict[bytes, object]) -> bytes:
    """``d`` pickled as Python 2's cPickle wrote the official CIFAR-10 batches."""
    body = b"".join(_py2_str(k) + _py2_value(v) for k, v in d.items())
    return b"\x80\x02}(" + body + b"u."


def cifar_images(n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    labels = [int(x) for x in rng.integers(0, 10, size=n)]
    return images, labels


def write_cifar10(root: Path, *, per_batch: int = 6, n_test: int = 5, py2: bool = True) -> dict:
    """A ``cifar-10-batches-py`` folder under ``root``; returns what was written."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    dump = py2_pickle if py2 else (lambda d: pickle.dumps(d, protocol=4))
    written = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        n = n_test if name == "test_batch" else per_batch
        images, labels = cifar_images(n, seed=i)
        batch = {
            b"batch_label": f"{name} of the test fixture".encode(),
            b"labels": labels,
            b"data": images.reshape(n, -1),
            b"filenames": [f"img_{i}_{j}.png".encode() for j in range(n)],
        }
        (folder / name).write_bytes(dump(batch))
        written[name] = (images, labels)
    meta = {b"num_cases_per_batch": per_batch, b"label_names": CIFAR_CLASSES, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(dump(meta))
    return written


def class_colour(label: int) -> tuple[int, int, int]:
    return (40 + 80 * label, 200 - 60 * label, 30 * label)


def write_tiny_imagenet(
    root: Path,
    *,
    wnids: tuple[str, ...] = ("n01443537", "n01629819", "n01641577"),
    n_train: int = 4,
    n_val: int = 6,
) -> Path:
    """A ``tiny-imagenet-200`` tree: solid-colour JPEGs whose colour encodes the class."""
    folder = root / "tiny-imagenet-200"
    folder.mkdir(parents=True)
    (folder / "wnids.txt").write_text("".join(f"{w}\n" for w in wnids))
    for label, wnid in enumerate(wnids):
        images = folder / "train" / wnid / "images"
        images.mkdir(parents=True)
        for j in range(n_train):
            img = Image.new("RGB", (64, 64), class_colour(label))
            # Real Tiny ImageNet has some greyscale JPEGs; the loader must make them RGB.
            if j == 1:
                img = img.convert("L")
            img.save(images / f"{wnid}_{j}.JPEG", quality=95)
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
    (folder / "val" / "images").mkdir(parents=True)
    lines = []
    for j in range(n_val):
        label = j % len(wnids)
        Image.new("RGB", (64, 64), class_colour(label)).save(
            folder / "val" / "images" / f"val_{j}.JPEG", quality=95
        )
        lines.append(f"val_{j}.JPEG\t{wnids[label]}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return folder


# --- CIFAR-10 --------------------------------------------------------------------------------


@pytest.mark.parametrize("py2", [True, False], ids=["python2-cpickle", "python3-pickle"])
def test_read_cifar10_batch_keeps_pixels_labels_and_channel_layout(tmp_path, py2):
    written = write_cifar10(tmp_path, py2=py2)
    images, labels = read_cifar10_batch(tmp_path / "cifar-10-batches-py" / "data_batch_3")
    expected_images, expected_labels = written["data_batch_3"]
    assert images.dtype == np.uint8
    assert images.shape == (6, 3, 32, 32)
    assert labels.dtype == np.int64
    assert labels.tolist() == expected_labels
    np.testing.assert_array_equal(images, expected_images)
    # The official row layout: 1024 red values, then green, then blue, each row-major.
    row = expected_images[0].reshape(-1)
    assert images[0, 1, 0, 5] == row[1024 + 5]
    assert images[0, 2, 3, 0] == row[2048 + 3 * 32]


def test_load_cifar10_uses_test_batch_for_validation_and_standardises(tmp_path):
    written = write_cifar10(tmp_path, per_batch=6, n_test=5)
    data = load_cifar10(tmp_path)
    assert data.x_train.shape == (30, 3, 32, 32)
    assert data.x_val.shape == (5, 3, 32, 32)
    assert data.x_train.dtype == np.float32
    assert data.y_train.dtype == np.int64
    assert data.y_val.tolist() == written["test_batch"][1]
    expected_train = [y for i in range(1, 6) for y in written[f"data_batch_{i}"][1]]
    assert data.y_train.tolist() == expected_train
    assert data.classes == tuple(c.decode() for c in CIFAR_CLASSES)
    assert data.n_classes == 10
    np.testing.assert_allclose(data.x_train.mean(axis=(0, 2, 3)), 0.0, atol=1e-4)
    np.testing.assert_allclose(data.x_train.std(axis=(0, 2, 3)), 1.0, atol=1e-3)
    # Standardising is monotone per channel: the brightest raw pixel stays the brightest.
    raw_val = written["test_batch"][0]
    assert np.argmax(data.x_val[:, 0]) == np.argmax(raw_val[:, 0])


def test_load_cifar10_accepts_the_batches_folder_itself_and_subsets(tmp_path):
    write_cifar10(tmp_path)
    data = load_cifar10(tmp_path / "cifar-10-batches-py", max_train=7, max_val=2, seed=3)
    assert len(data.x_train) == len(data.y_train) == 7
    assert len(data.x_val) == len(data.y_val) == 2
    again = load_cifar10(tmp_path, max_train=7, max_val=2, seed=3)
    np.testing.assert_array_equal(data.x_train, again.x_train)
    assert read_cifar10_classes(tmp_path)[0] == "airplane"


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cifar10_pickle_with_a_forbidden_global_is_refused_unexecuted(tmp_path):
    write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(pickle.dumps({b"data": _Exploit(marker), b"labels": [0]}, protocol=4))
    with pytest.raises(pickle.UnpicklingError, match=r"system"):
        read_cifar10_batch(batch)
    with pytest.raises(pickle.UnpicklingError):
        load_cifar10(tmp_path)
    assert not marker.exists()


def test_cifar10_batch_with_wrong_content_is_rejected(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(py2_pickle({b"labels": [1, 2]}))
    with pytest.raises(ValueError, match=r"missing key"):
        read_cifar10_batch(path)
    path.write_bytes(py2_pickle({b"data": np.zeros((2, 100), np.uint8), b"labels": [1, 2]}))
    with pytest.raises(ValueError, match=r"not a CIFAR-10 batch"):
        read_cifar10_batch(path)


def test_missing_cifar10_file_names_the_path_and_downloads_nothing(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DataFileMissing, match=r"data_batch_4") as excinfo:
        load_cifar10(tmp_path)
    assert "Nothing is downloaded" in str(excinfo.value)
    assert sorted(p.name for p in (tmp_path / "cifar-10-batches-py").iterdir()) == [
        "batches.meta",
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_5",
        "test_batch",
    ]


# --- Tiny ImageNet ---------------------------------------------------------------------------


def test_load_tiny_imagenet_reads_the_official_layout(tmp_path):
    write_tiny_imagenet(tmp_path, n_train=4, n_val=6)
    data = load_tiny_imagenet(tmp_path)
    assert data.x_train.shape == (12, 3, 64, 64)
    assert data.x_val.shape == (6, 3, 64, 64)
    assert data.x_train.dtype == np.float32
    assert data.y_train.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert data.y_val.tolist() == [0, 1, 2, 0, 1, 2]
    assert data.classes == ("n01443537", "n01629819", "n01641577")
    # Each class has its own solid colour: validation images match their class's training
    # images (greyscale ones aside), whatever the standardisation.
    colour_train = data.x_train[[0, 4, 8]].mean(axis=(2, 3))
    colour_val = data.x_val[:3].mean(axis=(2, 3))
    np.testing.assert_allclose(colour_val, colour_train, atol=0.05)
    # The greyscale JPEG became three equal channels.
    grey = data.x_train[1]
    assert grey.shape == (3, 64, 64)


def test_load_tiny_imagenet_subsets_and_resizes(tmp_path):
    folder = write_tiny_imagenet(tmp_path, n_train=4, n_val=6)
    odd = folder / "train" / "n01629819" / "images" / "n01629819_0.JPEG"
    Image.new("RGB", (50, 40), class_colour(1)).save(odd)
    data = load_tiny_imagenet(folder, max_classes=2, max_train=3, max_val=3, image_size=32)
    assert data.x_train.shape == (3, 3, 32, 32)
    assert data.y_train.tolist() == [0, 0, 1]
    assert data.n_classes == 2
    # Only validation images of the two kept classes count.
    assert data.y_val.tolist() == [0, 1, 0]


def test_missing_tiny_imagenet_files_are_named(tmp_path):
    with pytest.raises(DataFileMissing, match=r"wnids\.txt.*Nothing is downloaded"):
        load_tiny_imagenet(tmp_path)
    folder = write_tiny_imagenet(tmp_path)
    (folder / "val" / "val_annotations.txt").unlink()
    with pytest.raises(DataFileMissing, match=r"val_annotations\.txt"):
        load_tiny_imagenet(folder)


# --- Offline images from installed packages --------------------------------------------------


def test_mnist_offline_is_a_stratified_real_split():
    data = load_mnist_offline(n_val=200, max_train=300, downsample=2, seed=1)
    assert data.x_train.shape == (300, 1, 14, 14)
    assert data.x_val.shape == (200, 1, 14, 14)
    assert data.x_train.dtype == np.float32
    assert np.bincount(data.y_val, minlength=10).tolist() == [20] * 10
    assert np.bincount(data.y_train, minlength=10).tolist() == [30] * 10
    assert abs(float(data.x_train.mean())) < 1e-4
    # Real digits: most pixels are background, so values are far from uniform.
    assert float(np.median(data.x_train)) < 0
    full = load_mnist_offline(n_val=1000)
    assert full.x_train.shape == (4000, 1, 28, 28)


def test_digits_offline_split():
    data = load_digits_offline(n_val=300, max_train=200, seed=0)
    assert data.x_train.shape == (200, 1, 8, 8)
    assert data.x_val.shape == (300, 1, 8, 8)
    assert set(data.y_val.tolist()) == set(range(10))
    again = load_digits_offline(n_val=300, max_train=200, seed=0)
    np.testing.assert_array_equal(data.x_val, again.x_val)
