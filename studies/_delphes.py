"""Delphes particle-flow events for the MLPF study: a safe loader and a small offline simulation.

The public MLPF Delphes dataset of Pata et al. (2021, Zenodo) ships files such as
``tev14_pythia8_ttbar_0_0.pkl.bz2``: bz2-compressed pickles of a dict with three lists holding
one array per event, aligned row by row with the event's detector elements:

``X`` (``n_elements x 12``), the detector elements. Column 0 is the element type, 1 for a track
and 2 for a calorimeter tower; the other columns depend on it (the layout of the MLPF
ntuplizer, which this module assumes):

======  ====================  ====================
column  track (type 1)        tower (type 2)
======  ====================  ====================
0       type = 1              type = 2
1       pt                    et
2       eta                   eta
3       sin phi               sin phi
4       cos phi               cos phi
5       p                     energy
6       eta at the calo       electromagnetic energy
7       sin phi at the calo   hadronic energy
8       cos phi at the calo   0
9       charge                0
10      is_gen_muon           0
11      is_gen_electron       0
======  ====================  ====================

``ygen`` and ``ycand`` (``n_elements x 7``): the generator-level particle assigned to each
element, and the rule-based Delphes particle-flow candidate, as ``[type, charge, pt, eta,
sin phi, cos phi, energy]``; ``type`` is one of :data:`PARTICLE_TYPES` and an element with no
particle is all zeros.

Files are read with a restricted unpickler that resolves only the numpy names needed to rebuild
arrays, so a tampered file cannot run code. The same content is accepted as ``.npz`` (rows of all
events concatenated, with ``n_elements`` per event). Nothing is ever downloaded; without files,
:func:`simulate_events` produces events in the same format.
"""

from __future__ import annotations

import bz2
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

X_COLUMNS = (
    "type",
    "pt_or_et",
    "eta",
    "sin_phi",
    "cos_phi",
    "p_or_energy",
    "eta_outer_or_e_em",
    "sin_phi_outer_or_e_had",
    "cos_phi_outer",
    "charge",
    "is_gen_muon",
    "is_gen_electron",
)
Y_COLUMNS = ("type", "charge", "pt", "eta", "sin_phi", "cos_phi", "energy")
PARTICLE_TYPES = ("none", "charged_hadron", "neutral_hadron", "photon", "electron", "muon")
TRACK, TOWER = 1, 2

_PATTERNS = ("*.pkl.bz2", "*.pkl", "*.npz")

# Everything a pickle of dicts, lists and numpy arrays needs; dicts and lists are opcodes,
# not globals. numpy 2 renamed numpy.core to numpy._core, and files exist written by both.
_ALLOWED_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        # Protocol 2 pickles spell bytes as _codecs.encode(text, "latin1"): harmless.
        ("_codecs", "encode"),
    }
)


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a global outside the numpy names needed to rebuild arrays."""


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"refusing to load global {module}.{name}: Delphes particle-flow files hold "
                "only numpy arrays, lists and dicts"
            )
        return super().find_class(module, name)


@dataclass
class Events:
    """Particle-flow events: per event, detector elements and their target particles.

    Args:
        X: One ``(n_elements, 12)`` float32 array per event (columns :data:`X_COLUMNS`).
        ygen: One ``(n_elements, 7)`` float32 array per event (columns :data:`Y_COLUMNS`), the
            generator-level particle of each element.
        ycand: Same shape as ``ygen``, the rule-based particle-flow candidate of each element.
    """

    X: list[np.ndarray]
    ygen: list[np.ndarray]
    ycand: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, index: slice) -> Events:
        return Events(self.X[index], self.ygen[index], self.ycand[index])

    def concat(self, other: Events) -> Events:
        return Events(self.X + other.X, self.ygen + other.ygen, self.ycand + other.ycand)


def _validated(raw: object, source: str) -> Events:
    if not isinstance(raw, dict) or not {"X", "ygen", "ycand"} <= raw.keys():
        raise ValueError(f"{source}: expected a dict with keys 'X', 'ygen' and 'ycand'")
    lists = {key: list(raw[key]) for key in ("X", "ygen", "ycand")}
    n_events = len(lists["X"])
    if len(lists["ygen"]) != n_events or len(lists["ycand"]) != n_events:
        raise ValueError(
            f"{source}: X, ygen and ycand hold {n_events}, {len(lists['ygen'])} and "
            f"{len(lists['ycand'])} events"
        )
    out: dict[str, list[np.ndarray]] = {key: [] for key in lists}
    for i in range(n_events):
        x = np.asarray(lists["X"][i], dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(X_COLUMNS):
            raise ValueError(f"{source}: event {i} has X of shape {x.shape}, expected (n, 12)")
        out["X"].append(x)
        for key in ("ygen", "ycand"):
            y = np.asarray(lists[key][i], dtype=np.float32)
            if y.shape != (len(x), len(Y_COLUMNS)):
                raise ValueError(
                    f"{source}: event {i} has {key} of shape {y.shape}, expected ({len(x)}, 7)"
                )
            out[key].append(y)
    return Events(out["X"], out["ygen"], out["ycand"])


def load_file(path: str | Path) -> Events:
    """Read one Delphes particle-flow file (``.pkl.bz2``, ``.pkl`` or ``.npz``).

    Args:
        path: The file. Pickles go through an unpickler that accepts only numpy arrays, lists
            and dicts; anything else raises :class:`UnsafePickleError` before it is built.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no Delphes file at {path}; get the MLPF Delphes dataset (Pata et al., Zenodo) "
            "yourself, nothing is downloaded, or omit --data-dir to use the built-in simulation"
        )
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as arrays:
            if "n_elements" not in arrays:
                raise ValueError(f"{path}: an .npz needs 'X', 'ygen', 'ycand' and 'n_elements'")
            splits = np.cumsum(arrays["n_elements"])[:-1]
            raw = {key: np.split(arrays[key], splits) for key in ("X", "ygen", "ycand")}
        return _validated(raw, str(path))
    opener = bz2.open if path.name.endswith(".bz2") else open
    with opener(path, "rb") as f:
        # latin1 reads arrays pickled by Python 2, as numpy documents.
        raw = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    return _validated(raw, str(path))


def load_dir(data_dir: str | Path, *, max_files: int | None = None) -> Events:
    """Read every Delphes file in a folder, in name order.

    Args:
        data_dir: Folder holding ``*.pkl.bz2``, ``*.pkl`` or ``*.npz`` files.
        max_files: Read at most this many files (the full dataset is large).
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data directory {data_dir} does not exist")
    files = sorted({p for pattern in _PATTERNS for p in data_dir.glob(pattern)})
    if not files:
        raise FileNotFoundError(
            f"no Delphes files ({', '.join(_PATTERNS)}) in {data_dir}; nothing is downloaded"
        )
    events = Events([], [], [])
    for path in files[:max_files]:
        events = events.concat(load_file(path))
    return events


def write_pickle(events: Events, path: str | Path) -> None:
    """Write events in the dataset's own format, a bz2-compressed pickle of a dict of lists."""
    payload = {"X": events.X, "ygen": events.ygen, "ycand": events.ycand}
    with bz2.open(path, "wb") as f:
        pickle.dump(payload, f, protocol=4)


def write_npz(events: Events, path: str | Path) -> None:
    """Write events as ``.npz``: rows of all events concatenated, plus ``n_elements``."""
    np.savez_compressed(
        path,
        X=np.concatenate(events.X),
        ygen=np.concatenate(events.ygen),
        ycand=np.concatenate(events.ycand),
        n_elements=np.array([len(x) for x in events.X], dtype=np.int64),
    )


# Built-in simulation -----------------------------------------------------------------------

_CLASS_FRACTIONS = np.array([0.55, 0.15, 0.20, 0.05, 0.05])  # types 1..5
_CHARGED = {1, 4, 5}
_MASS = {1: 0.1396, 2: 0.4977, 3: 0.0, 4: 0.000511, 5: 0.1057}
_TRACKER_ETA = 2.5
_CALO_ETA = 3.0
_CELL = 0.1  # tower size in eta and phi, close to the CMS-like Delphes card's 0.087
# Charged particles bend in the solenoid by roughly this many radians per GeV^-1 before the
# calorimeter: 0.3 * B[T] * R[m] / 2 with B = 3.8 T and R = 1.29 m.
_BEND = 0.3 * 3.8 * 1.29 / 2
_TOWER_THRESHOLD = 0.5  # GeV; softer towers are noise-suppressed away


def _smear_calo(energy: float, em: bool, rng: np.random.Generator) -> float:
    stochastic, constant = (0.05, 0.01) if em else (0.5, 0.05)
    sigma = energy * np.hypot(stochastic / np.sqrt(max(energy, 1e-3)), constant)
    return max(0.0, energy + sigma * rng.standard_normal())


def _simulate_event(rng: np.random.Generator, mean_particles: float) -> tuple[np.ndarray, ...]:
    n = max(1, rng.poisson(mean_particles))
    types = rng.choice(np.arange(1, 6), size=n, p=_CLASS_FRACTIONS)
    # Soft-dominated spectrum with a hard tail, like the particles of a ttbar event.
    pt = 0.5 + rng.lognormal(mean=0.5, sigma=1.0, size=n)
    charged = np.isin(types, list(_CHARGED))
    eta = np.where(
        charged,
        rng.uniform(-_TRACKER_ETA, _TRACKER_ETA, n),
        rng.uniform(-_CALO_ETA, _CALO_ETA, n),
    )
    phi = rng.uniform(-np.pi, np.pi, n)
    charge = np.where(charged, rng.choice([-1.0, 1.0], size=n), 0.0)
    p = pt * np.cosh(eta)
    energy = np.sqrt(p**2 + np.array([_MASS[t] for t in types]) ** 2)

    tracks, track_gen, track_cand = [], [], []
    towers: dict[tuple[int, int], dict[str, float | list[int]]] = {}
    for i in range(n):
        t = int(types[i])
        phi_outer = phi[i]
        if t in _CHARGED:
            phi_outer = np.angle(np.exp(1j * (phi[i] - charge[i] * _BEND / pt[i])))
            pt_meas = pt[i] * (1 + (0.01 + 0.0005 * pt[i]) * rng.standard_normal())
            pt_meas = max(pt_meas, 0.1)
            p_meas = pt_meas * np.cosh(eta[i])
            tracks.append(
                [
                    TRACK,
                    pt_meas,
                    eta[i],
                    np.sin(phi[i]),
                    np.cos(phi[i]),
                    p_meas,
                    eta[i],
                    np.sin(phi_outer),
                    np.cos(phi_outer),
                    charge[i],
                    float(t == 5),
                    float(t == 4),
                ]
            )
            track_gen.append(
                [t, charge[i], pt[i], eta[i], np.sin(phi[i]), np.cos(phi[i]), energy[i]]
            )
            cand_type = 5 if t == 5 else 4 if t == 4 else 1
            track_cand.append(
                [
                    cand_type,
                    charge[i],
                    pt_meas,
                    eta[i],
                    np.sin(phi[i]),
                    np.cos(phi[i]),
                    np.hypot(p_meas, _MASS[cand_type]),
                ]
            )
        if t == 5:
            continue  # muons leave a minimum-ionising trace only, below the tower threshold
        cell = (int(np.floor(eta[i] / _CELL)), int(np.floor(phi_outer / _CELL)))
        tower = towers.setdefault(cell, {"em": 0.0, "had": 0.0, "charged_e": 0.0, "neutral": []})
        em = t in (3, 4)
        # Charged hadrons leave only part of their energy, as hadron showers do.
        deposit = energy[i] * (rng.uniform(0.5, 1.0) if t == 1 else 1.0)
        tower["em" if em else "had"] += deposit
        if t in _CHARGED:
            tower["charged_e"] += deposit
        else:
            tower["neutral"].append(i)

    tower_x, tower_gen, tower_cand = [], [], []
    for (ieta, iphi), tower in sorted(towers.items()):
        e_em = _smear_calo(tower["em"], True, rng) if tower["em"] > 0 else 0.0
        e_had = _smear_calo(tower["had"], False, rng) if tower["had"] > 0 else 0.0
        e_tot = e_em + e_had
        if e_tot < _TOWER_THRESHOLD:
            continue
        t_eta = (ieta + 0.5) * _CELL
        t_phi = (iphi + 0.5) * _CELL
        tower_x.append(
            [
                TOWER,
                e_tot / np.cosh(t_eta),
                t_eta,
                np.sin(t_phi),
                np.cos(t_phi),
                e_tot,
                e_em,
                e_had,
                0,
                0,
                0,
                0,
            ]
        )
        neutral = tower["neutral"]
        if neutral:
            # Neutral particles sharing a tower cannot be told apart: MLPF's target is their
            # sum, typed by the most energetic one.
            e_sum = float(sum(energy[j] for j in neutral))
            lead = max(neutral, key=lambda j: energy[j])
            px = sum(pt[j] * np.cos(phi[j]) for j in neutral)
            py = sum(pt[j] * np.sin(phi[j]) for j in neutral)
            g_phi = np.arctan2(py, px)
            g_eta = float(sum(energy[j] * eta[j] for j in neutral) / e_sum)
            tower_gen.append(
                [
                    types[lead],
                    0,
                    e_sum / np.cosh(g_eta),
                    g_eta,
                    np.sin(g_phi),
                    np.cos(g_phi),
                    e_sum,
                ]
            )
        else:
            tower_gen.append([0] * 7)
        # Rule-based candidate: the energy left after the tracks' expected deposit is neutral.
        excess = e_tot - tower["charged_e"]
        if excess > max(1.0, 0.3 * e_tot):
            cand_type = 3 if e_em > e_had else 2
            tower_cand.append(
                [
                    cand_type,
                    0,
                    excess / np.cosh(t_eta),
                    t_eta,
                    np.sin(t_phi),
                    np.cos(t_phi),
                    excess,
                ]
            )
        else:
            tower_cand.append([0] * 7)

    def _array(rows: list, width: int) -> np.ndarray:
        return np.asarray(rows, dtype=np.float32).reshape(-1, width)

    x = np.concatenate([_array(tracks, 12), _array(tower_x, 12)])
    ygen = np.concatenate([_array(track_gen, 7), _array(tower_gen, 7)])
    ycand = np.concatenate([_array(track_cand, 7), _array(tower_cand, 7)])
    return x, ygen, ycand


def simulate_events(n_events: int, *, seed: int = 0, mean_particles: float = 30.0) -> Events:
    """Simulate Delphes-like particle-flow events offline, in the dataset's format.

    Each event draws a Poisson number of particles of the five classes (charged hadrons,
    neutral hadrons, photons, electrons, muons) with a steeply falling pt spectrum. Charged
    particles (all inside the tracker, ``|eta| < 2.5``) leave a track with 1% pt smearing and
    bend in a 3.8 T field before the calorimeter; everything but muons deposits energy in
    ``0.1 x 0.1`` towers (charged hadrons only part of it), which merge what falls in the same
    cell and smear it with electromagnetic or hadronic resolution. Each track's target is its
    particle; a tower's target is the sum of the neutral particles in it, or none. ``ycand``
    comes from a simple rule-based particle flow, as in the real files.

    Args:
        n_events: How many events.
        seed: Seed of the generator; the same seed gives the same events.
        mean_particles: Mean number of particles per event (about 2x elements per particle).
    """
    if n_events < 1:
        raise ValueError(f"n_events must be >= 1, got {n_events}")
    if mean_particles <= 0:
        raise ValueError(f"mean_particles must be > 0, got {mean_particles}")
    rng = np.random.default_rng(seed)
    out = Events([], [], [])
    for _ in range(n_events):
        x, ygen, ycand = _simulate_event(rng, mean_particles)
        out.X.append(x)
        out.ygen.append(ygen)
        out.ycand.append(ycand)
    return out
