from __future__ import annotations

import bz2
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

from studies import _delphes


def _handmade_events() -> dict[str, list[np.ndarray]]:
    # Two events as the MLPF ntuplizer writes them: a track and a tower, then a lone tower.
    track = [1, 10.0, 0.5, 0.0, 1.0, 11.3, 0.5, 0.1, 0.99, -1, 0, 1]
    tower = [2, 5.0, -1.0, 1.0, 0.0, 7.7, 7.0, 0.7, 0, 0, 0, 0]
    x = [np.array([track, tower], dtype=np.float32), np.array([tower], dtype=np.float32)]
    ygen = [
        np.array([[4, -1, 10.0, 0.5, 0.0, 1.0, 11.3], [3, 0, 4.8, -1.0, 1.0, 0.0, 7.4]]),
        np.zeros((1, 7)),
    ]
    ycand = [
        np.array([[4, -1, 10.1, 0.5, 0.0, 1.0, 11.4], [0, 0, 0, 0, 0, 0, 0]]),
        np.array([[2, 0, 5.0, -1.0, 1.0, 0.0, 7.7]]),
    ]
    return {"X": x, "ygen": ygen, "ycand": ycand}


def _write_real_format(payload: object, path: Path, protocol: int) -> None:
    with bz2.open(path, "wb") as f:
        pickle.dump(payload, f, protocol=protocol)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_load_file_reads_the_zenodo_format(tmp_path: Path, protocol: int) -> None:
    payload = _handmade_events()
    path = tmp_path / "tev14_pythia8_ttbar_0_0.pkl.bz2"
    _write_real_format(payload, path, protocol)

    events = _delphes.load_file(path)

    assert len(events) == 2
    assert [x.shape for x in events.X] == [(2, 12), (1, 12)]
    assert [y.shape for y in events.ygen] == [(2, 7), (1, 7)]
    assert all(x.dtype == np.float32 for x in events.X + events.ygen + events.ycand)
    assert len(_delphes.X_COLUMNS) == 12
    assert _delphes.Y_COLUMNS[0] == "type"
    for key in ("X", "ygen", "ycand"):
        for got, want in zip(getattr(events, key), payload[key], strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-6)
    assert events.X[0][:, 0].tolist() == [_delphes.TRACK, _delphes.TOWER]
    labels = [_delphes.PARTICLE_TYPES[int(t)] for t in events.ygen[0][:, 0]]
    assert labels == ["electron", "photon"]
    assert _delphes.PARTICLE_TYPES[int(events.ycand[1][0, 0])] == "neutral_hadron"


def test_pickle_written_with_old_numpy_module_names_loads(tmp_path: Path) -> None:
    # Files written under numpy 1 name numpy.core.multiarray, numpy 2 renamed it numpy._core.
    data = pickle.dumps(_handmade_events(), protocol=2)
    data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in data
    path = tmp_path / "old.pkl.bz2"
    path.write_bytes(bz2.compress(data))

    with warnings.catch_warnings():
        # numpy 2 still resolves the old name, with a DeprecationWarning.
        warnings.simplefilter("ignore", DeprecationWarning)
        events = _delphes.load_file(path)

    assert [len(x) for x in events.X] == [2, 1]


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("suffix", [".pkl.bz2", ".pkl"])
def test_pickle_with_a_forbidden_global_is_rejected_unexecuted(
    tmp_path: Path, suffix: str
) -> None:
    marker = tmp_path / "pwned"
    payload = _handmade_events()
    payload["X"].append(_Evil(marker))
    path = tmp_path / f"evil{suffix}"
    if suffix == ".pkl.bz2":
        _write_real_format(payload, path, protocol=4)
    else:
        path.write_bytes(pickle.dumps(payload))

    with pytest.raises(_delphes.UnsafePickleError, match="system"):
        _delphes.load_file(path)

    assert not marker.exists()


def test_write_pickle_and_npz_round_trip_simulated_events(tmp_path: Path) -> None:
    events = _delphes.simulate_events(5, seed=3, mean_particles=8)
    _delphes.write_pickle(events, tmp_path / "a.pkl.bz2")
    _delphes.write_npz(events, tmp_path / "b.npz")

    for path in (tmp_path / "a.pkl.bz2", tmp_path / "b.npz"):
        loaded = _delphes.load_file(path)
        assert len(loaded) == 5
        for key in ("X", "ygen", "ycand"):
            for got, want in zip(getattr(loaded, key), getattr(events, key), strict=True):
                np.testing.assert_array_equal(got, want)


def test_load_dir_reads_files_in_name_order_and_honours_max_files(tmp_path: Path) -> None:
    first = _delphes.simulate_events(2, seed=0, mean_particles=5)
    second = _delphes.simulate_events(3, seed=1, mean_particles=5)
    _delphes.write_pickle(second, tmp_path / "tev14_pythia8_ttbar_1_0.pkl.bz2")
    _delphes.write_pickle(first, tmp_path / "tev14_pythia8_ttbar_0_0.pkl.bz2")
    (tmp_path / "README.txt").write_text("ignored")

    events = _delphes.load_dir(tmp_path)
    assert len(events) == 5
    np.testing.assert_array_equal(events.X[0], first.X[0])
    np.testing.assert_array_equal(events.X[2], second.X[0])
    assert len(_delphes.load_dir(tmp_path, max_files=1)) == 2


def test_missing_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        _delphes.load_file(tmp_path / "tev14_pythia8_ttbar_0_0.pkl.bz2")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _delphes.load_dir(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="no Delphes files"):
        _delphes.load_dir(tmp_path)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ([1, 2, 3], "expected a dict"),
        ({"X": [np.zeros((2, 12))], "ygen": [], "ycand": []}, "hold 1, 0 and 0"),
        (
            {"X": [np.zeros((2, 5))], "ygen": [np.zeros((2, 7))], "ycand": [np.zeros((2, 7))]},
            r"expected \(n, 12\)",
        ),
        (
            {"X": [np.zeros((2, 12))], "ygen": [np.zeros((3, 7))], "ycand": [np.zeros((2, 7))]},
            r"ygen of shape \(3, 7\)",
        ),
    ],
)
def test_malformed_content_is_rejected(tmp_path: Path, payload: object, match: str) -> None:
    path = tmp_path / "bad.pkl.bz2"
    _write_real_format(payload, path, protocol=4)
    with pytest.raises(ValueError, match=match):
        _delphes.load_file(path)


def test_simulation_is_seeded() -> None:
    a = _delphes.simulate_events(4, seed=7)
    b = _delphes.simulate_events(4, seed=7)
    c = _delphes.simulate_events(4, seed=8)
    for key in ("X", "ygen", "ycand"):
        for got, want in zip(getattr(a, key), getattr(b, key), strict=True):
            np.testing.assert_array_equal(got, want)
    assert any(
        x.shape != y.shape or not np.array_equal(x, y) for x, y in zip(a.X, c.X, strict=True)
    )


def test_simulated_events_are_physically_consistent() -> None:
    events = _delphes.simulate_events(60, seed=11, mean_particles=20)
    x = np.concatenate(events.X)
    y = np.concatenate(events.ygen)
    cand = np.concatenate(events.ycand)
    track = x[:, 0] == _delphes.TRACK
    tower = x[:, 0] == _delphes.TOWER
    assert np.all(track | tower) and track.any() and tower.any()

    types = y[:, 0].astype(int)
    charged = np.isin(types, [1, 4, 5])
    # Charged particles are all inside the tracker, so each has exactly its track; neutral
    # particles only ever sit on towers, and muons never make a tower.
    assert np.array_equal(charged, track)
    assert np.all(np.isin(types[tower], [0, 2, 3]))
    assert set(np.unique(types)) == {0, 1, 2, 3, 4, 5}
    np.testing.assert_array_equal(y[track, 1], x[track, 9])
    assert np.all(np.abs(x[track, 9]) == 1) and np.all(y[tower, 1] == 0)
    np.testing.assert_array_equal(x[track, 10], (types[track] == 5).astype(np.float32))
    np.testing.assert_array_equal(x[track, 11], (types[track] == 4).astype(np.float32))

    particle = types > 0
    pt, eta, energy = y[particle, 2], y[particle, 3], y[particle, 6]
    assert np.all(pt > 0) and np.all(energy > 0)
    assert np.all(energy >= pt * np.cosh(eta) * (1 - 1e-5))  # E >= |p|
    np.testing.assert_allclose(y[particle, 4] ** 2 + y[particle, 5] ** 2, 1, atol=1e-5)
    assert np.all(np.abs(y[track, 3]) < 2.5)
    assert np.all(y[~particle] == 0)

    # Towers hold positive energy split into electromagnetic and hadronic parts.
    e_tower = x[tower, 5]
    assert np.all(e_tower > 0) and np.all(x[tower, 1] > 0)
    np.testing.assert_allclose(x[tower, 6] + x[tower, 7], e_tower, rtol=1e-5)
    np.testing.assert_allclose(x[tower, 1], e_tower / np.cosh(x[tower, 2]), rtol=1e-5)
    assert np.all(x[tower, 8:] == 0)
    # Smearing makes measurements close to, but not equal to, the truth.
    ratio = x[track, 1] / y[track, 2]
    assert np.all(np.abs(ratio - 1) < 0.3) and np.std(ratio) > 0
    # The rule-based candidates keep the element layout and mostly agree with the truth.
    assert cand.shape == y.shape
    assert np.mean(cand[:, 0] == y[:, 0]) > 0.8


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n_events": 0}, "n_events"), ({"n_events": 3, "mean_particles": 0}, "mean_particles")],
)
def test_simulation_validates_arguments(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _delphes.simulate_events(**kwargs)
