from __future__ import annotations

import sys
import threading
import time
import warnings
from typing import Any, ClassVar

import dimod
import numpy as np
import pytest
from dimod.exceptions import SamplerUnknownArgWarning
from dwave.samplers import SimulatedAnnealingSampler
from sklearn.utils._param_validation import InvalidParameterError

from optuna_qsvr.predictors._annealers import resolve_annealer, sample_qubo
from optuna_qsvr.predictors._base import AnnealerError, AnnealerTimeoutError, PredictorError
from optuna_qsvr.predictors._qsvr import QSVR
from optuna_qsvr.predictors._qubo import bqm_from_matrix, qubo_matrix

FAKE_TOKEN = "ABC-0123456789abcdef0123456789abcdef01234567"


class FailingSampler(dimod.Sampler):
    """A sampler whose solver breaks, as a cloud solver does on a bad answer."""

    def __init__(self, message: str = "solver exploded") -> None:
        self.message = message

    parameters: ClassVar[dict[str, Any]] = {"num_reads": []}
    properties: ClassVar[dict[str, Any]] = {}

    def sample(self, bqm, **kwargs):
        raise RuntimeError(self.message)


class SleepingSampler(dimod.Sampler):
    """Answers correctly (with the ExactSolver), but only after ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    parameters: ClassVar[dict[str, Any]] = {}
    properties: ClassVar[dict[str, Any]] = {}

    def sample(self, bqm, **kwargs):
        time.sleep(self.delay)
        return dimod.ExactSolver().sample(bqm)


class EmptySampler(dimod.Sampler):
    parameters: ClassVar[dict[str, Any]] = {}
    properties: ClassVar[dict[str, Any]] = {}

    def sample(self, bqm, **kwargs):
        return dimod.SampleSet.from_samples(([], list(bqm.variables)), "BINARY", energy=[])


@pytest.fixture
def small_bqm():
    rng = np.random.default_rng(0)
    return bqm_from_matrix(qubo_matrix(rng.uniform(size=(2, 2)), rng.uniform(size=2), K=2))


@pytest.fixture
def offline_dwave_config(tmp_path, monkeypatch):
    """No token anywhere: no env variable, an empty Ocean config file, a bare home."""
    config = tmp_path / "dwave.conf"
    config.write_text("")
    monkeypatch.delenv("DWAVE_API_TOKEN", raising=False)
    monkeypatch.delenv("DWAVE_PROFILE", raising=False)
    monkeypatch.setenv("DWAVE_CONFIG_FILE", str(config))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    # An unroutable endpoint: should anything try the network, it fails at once.
    monkeypatch.setenv("DWAVE_API_ENDPOINT", "http://127.0.0.1:9/sapi/")


def test_resolve_names_and_instances():
    assert isinstance(resolve_annealer("simulated"), SimulatedAnnealingSampler)
    assert isinstance(resolve_annealer(" Simulated "), SimulatedAnnealingSampler)
    assert isinstance(resolve_annealer("exact"), dimod.ExactSolver)
    sampler = FailingSampler()
    assert resolve_annealer(sampler) is sampler


def test_the_default_annealer_is_simulated_annealing():
    assert type(resolve_annealer()) is SimulatedAnnealingSampler


def test_resolve_unknown_name_raises_value_error():
    with pytest.raises(ValueError, match="'quantum-magic'"):
        resolve_annealer("quantum-magic")
    with pytest.raises(TypeError, match=r"dimod\.Sampler"):
        resolve_annealer(42)


@pytest.mark.parametrize("name", ["qpu", "hybrid"])
def test_cloud_annealer_without_credentials(name, offline_dwave_config):
    pytest.importorskip("dwave.system")  # imported first: the bound is on the error path only
    start = time.monotonic()
    with pytest.raises(AnnealerError, match="DWAVE_API_TOKEN"):
        resolve_annealer(name)
    assert time.monotonic() - start < 5


def test_cloud_annealer_without_package(monkeypatch):
    # A None entry in sys.modules makes the import fail exactly as if it were not installed.
    monkeypatch.setitem(sys.modules, "dwave.system", None)
    with pytest.raises(AnnealerError, match=r"pip install \"optuna-qsvr\[qpu\]\""):
        resolve_annealer("qpu")


def test_sample_qubo_passes_only_accepted_params(small_bqm):
    # Unknown keywords are dropped by dimod's own remove_unknown_kwargs, which warns.
    with pytest.warns(SamplerUnknownArgWarning, match="chain_strength"):
        sampleset = sample_qubo(
            SimulatedAnnealingSampler(), small_bqm, num_reads=7, seed=3, chain_strength=5.0
        )
    assert len(sampleset) == 7
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # known keywords and None values pass silently
        again = sample_qubo(
            SimulatedAnnealingSampler(), small_bqm, num_reads=7, seed=3, chain_strength=None
        )
    np.testing.assert_array_equal(sampleset.record.sample, again.record.sample)

    with pytest.warns(SamplerUnknownArgWarning) as record:
        exact = sample_qubo(dimod.ExactSolver(), small_bqm, num_reads=7, seed=3)
    assert sorted(str(w.message) for w in record) == [
        "Ignoring unknown kwarg: 'num_reads'",
        "Ignoring unknown kwarg: 'seed'",
    ]
    assert len(exact) == 2**small_bqm.num_variables


def test_failing_sampler_raises_annealer_error(small_bqm):
    with pytest.raises(AnnealerError) as info:
        sample_qubo(FailingSampler(), small_bqm, num_reads=3)
    message = str(info.value)
    assert "FailingSampler" in message
    assert "RuntimeError" in message
    assert "solver exploded" in message
    assert isinstance(info.value, PredictorError)
    # Nothing to hide in the message: the original error stays chained for the traceback.
    assert isinstance(info.value.__cause__, RuntimeError)


def test_error_message_never_echoes_the_token(small_bqm, monkeypatch):
    monkeypatch.setenv("DWAVE_API_TOKEN", FAKE_TOKEN)
    sampler = FailingSampler(f"401 Unauthorized for token={FAKE_TOKEN}")
    with pytest.raises(AnnealerError) as info:
        sample_qubo(sampler, small_bqm)
    assert FAKE_TOKEN not in str(info.value)
    assert FAKE_TOKEN[4:20] not in str(info.value)
    assert "401 Unauthorized" in str(info.value)
    assert info.value.__cause__ is None

    # The same token in an unknown form (no "token=" prefix, env variable unset) is hidden too.
    monkeypatch.delenv("DWAVE_API_TOKEN")
    with pytest.raises(AnnealerError) as info:
        sample_qubo(FailingSampler(f"bad credentials {FAKE_TOKEN}"), small_bqm)
    assert FAKE_TOKEN not in str(info.value)


def test_slow_sampler_times_out(small_bqm):
    # Threads of earlier tests may still sleep (test_qsvr_propagates_annealer_errors leaves one
    # with the same name, and mutmut runs the tests fastest first): look only at this call's.
    before = set(threading.enumerate())
    start = time.monotonic()
    with pytest.raises(AnnealerTimeoutError, match=r"timeout=0\.2") as info:
        sample_qubo(SleepingSampler(10.0), small_bqm, timeout=0.2)
    # Far under the sampler's 10 s, with room for a loaded machine's scheduling.
    assert time.monotonic() - start < 5.0
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, AnnealerError)

    # The sampler that would not answer is left to a daemon thread named after it, so a
    # hung solver never keeps the worker's process from exiting.
    [left] = [
        t
        for t in threading.enumerate()
        if t.name == "sample_qubo[SleepingSampler]" and t not in before
    ]
    assert left.daemon

    sampleset = sample_qubo(SleepingSampler(0.05), small_bqm, timeout=5.0)
    assert len(sampleset) == 2**small_bqm.num_variables


def test_simulated_annealing_is_interrupted_on_timeout():
    rng = np.random.default_rng(0)
    bqm = bqm_from_matrix(qubo_matrix(rng.uniform(size=(20, 3)), rng.uniform(size=20)))
    start = time.monotonic()
    with pytest.raises(AnnealerTimeoutError):
        sample_qubo(
            SimulatedAnnealingSampler(), bqm, timeout=0.3, num_reads=2000, num_sweeps=20_000
        )
    assert time.monotonic() - start < 2
    # The worker honours interrupt_function, so it stops instead of annealing for minutes.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        t.name.startswith("sample_qubo[") for t in threading.enumerate()
    ):
        time.sleep(0.05)
    assert not any(t.name.startswith("sample_qubo[") for t in threading.enumerate())


def test_empty_sample_set_is_rejected(small_bqm):
    with pytest.raises(AnnealerError, match="empty"):
        sample_qubo(EmptySampler(), small_bqm)


def test_invalid_timeout(small_bqm):
    with pytest.raises(ValueError, match="timeout"):
        sample_qubo(dimod.ExactSolver(), small_bqm, timeout=0)


def test_qsvr_propagates_annealer_errors():
    X = np.linspace(0, 1, 4)[:, None]
    y = X[:, 0] ** 2
    with pytest.raises(AnnealerError, match="FailingSampler"):
        QSVR(annealer=FailingSampler()).fit(X, y)
    with pytest.raises(AnnealerTimeoutError, match=r"timeout=0\.2"):
        QSVR(annealer=SleepingSampler(1.0), K=1, timeout=0.2).fit(X[:2], y[:2])
    with pytest.raises(InvalidParameterError, match="'nope'"):
        QSVR(annealer="nope").fit(X, y)


class _Garbling(dimod.Sampler):
    """Answers with the ExactSolver's samples, then garbles them as a broken solver might."""

    parameters: ClassVar[dict[str, Any]] = {}
    properties: ClassVar[dict[str, Any]] = {}

    def __init__(self, how: str) -> None:
        self.how = how

    def sample(self, bqm, **kwargs):
        exact = dimod.ExactSolver().sample(bqm)
        samples = exact.record.sample.astype(int)
        energies = exact.record.energy.astype(float)
        if self.how == "nan":
            energies[:] = np.nan
        elif self.how == "inf":
            energies[0] = np.inf
        elif self.how == "spin":
            samples = 2 * samples - 1
        elif self.how == "seven":
            samples[0, 0] = 7
        return dimod.SampleSet.from_samples(
            (samples, list(bqm.variables)), "BINARY", energy=energies
        )


@pytest.mark.parametrize(
    ("how", "match"),
    [
        ("nan", "non-finite energies"),
        ("inf", "non-finite energies"),
        ("spin", r"values \[-1, 1\], not the bits 0 and 1"),
        ("seven", r"values \[0, 1, 7\], not the bits 0 and 1"),
    ],
)
def test_a_garbled_sample_set_fails_the_fit(how, match):
    # NaN energies would choose the samples to combine at random, and spins or other values
    # decode to dual coefficients no QUBO holds: the fit fails, so the pruner falls back.
    X = np.linspace(0, 1, 3)[:, None]
    y = X[:, 0] ** 2
    with pytest.raises(AnnealerError, match=match):
        QSVR(annealer=_Garbling(how), K=2).fit(X, y)
    QSVR(annealer=_Garbling("none"), K=2).fit(X, y)  # the same answers, ungarbled, fit
