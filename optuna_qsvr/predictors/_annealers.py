"""Choosing a dimod sampler and calling it with a time limit and clear errors."""

from __future__ import annotations

import os
import threading
from typing import Any

import dimod

from optuna_qsvr._secrets import scrub
from optuna_qsvr.predictors._base import AnnealerError, AnnealerTimeoutError

__all__ = ["ANNEALER_NAMES", "resolve_annealer", "sample_qubo"]

ANNEALER_NAMES = ("simulated", "exact", "qpu", "hybrid")

_QPU_EXTRA_HINT = 'install the QPU extra with `pip install "optuna-qsvr[qpu]"`'


def _has_cloud_token() -> bool:
    if os.environ.get("DWAVE_API_TOKEN", "").strip():
        return True
    from dwave.cloud.config import load_config

    try:
        config = load_config()
    except Exception:
        return False
    return bool(config.get("token"))


def _leap_sampler(kind: str) -> dimod.Sampler:
    try:
        from dwave.system import DWaveSampler, EmbeddingComposite, LeapHybridSampler
    except ImportError as exc:
        raise AnnealerError(
            f"annealer {kind!r} needs dwave-system, which is not installed: {_QPU_EXTRA_HINT}"
        ) from exc

    # Checked before any client is built: without a token the client would still try the
    # network (metadata API) before failing, which is slow and pointless.
    if not _has_cloud_token():
        raise AnnealerError(
            f"annealer {kind!r} needs D-Wave Leap credentials: set the DWAVE_API_TOKEN "
            "environment variable or create an Ocean configuration with `dwave config create`"
        )
    try:
        if kind == "qpu":
            return EmbeddingComposite(DWaveSampler())
        return LeapHybridSampler()
    except Exception as exc:
        raise AnnealerError(
            f"could not connect to the D-Wave {kind} solver: "
            f"{type(exc).__name__}: {scrub(str(exc))}"
        ) from None


def resolve_annealer(annealer: str | dimod.Sampler = "simulated") -> dimod.Sampler:
    """Return the dimod sampler an ``annealer`` argument stands for.

    Credentials for the D-Wave cloud are only read by Ocean itself, from its configuration
    file or the ``DWAVE_API_TOKEN`` environment variable; they are never an argument.

    Args:
        annealer:
            A :class:`dimod.Sampler` instance, used as is, or one of the names
            ``"simulated"`` (:class:`dwave.samplers.SimulatedAnnealingSampler`), ``"exact"``
            (:class:`dimod.ExactSolver`, tiny problems only), ``"qpu"``
            (``EmbeddingComposite(DWaveSampler())``) or ``"hybrid"`` (``LeapHybridSampler``).

    Returns:
        The sampler.

    Raises:
        ValueError: If ``annealer`` is an unknown name.
        TypeError: If ``annealer`` is neither a name nor a dimod sampler.
        AnnealerError: If a cloud solver cannot be used (package missing, no credentials,
            connection failure).

    Example:

        .. code-block:: python

            from optuna_qsvr.predictors._annealers import resolve_annealer

            sampler = resolve_annealer("simulated")
    """
    if isinstance(annealer, dimod.Sampler):
        return annealer
    if not isinstance(annealer, str):
        raise TypeError(
            f"annealer must be a dimod.Sampler or one of {ANNEALER_NAMES}, "
            f"got {type(annealer).__name__}"
        )
    name = annealer.strip().lower()
    if name == "simulated":
        from dwave.samplers import SimulatedAnnealingSampler

        return SimulatedAnnealingSampler()
    if name == "exact":
        return dimod.ExactSolver()
    if name in ("qpu", "hybrid"):
        return _leap_sampler(name)
    raise ValueError(f"unknown annealer {annealer!r}; expected one of {ANNEALER_NAMES}")


def sample_qubo(
    sampler: dimod.Sampler,
    bqm: dimod.BinaryQuadraticModel,
    *,
    timeout: float | None = None,
    **params: Any,
) -> dimod.SampleSet:
    """Sample ``bqm`` with ``sampler``, within ``timeout`` seconds and with clear errors.

    ``None`` values are dropped; keyword arguments the sampler does not declare in
    ``sampler.parameters`` are dropped by its own ``remove_unknown_kwargs``, with dimod's
    :class:`~dimod.exceptions.SamplerUnknownArgWarning`.

    Args:
        sampler:
            Any dimod sampler.
        bqm:
            The binary quadratic model to sample.
        timeout:
            Seconds to wait for the answer, or ``None`` to wait indefinitely. The sampler runs
            in a daemon worker thread; a sampler accepting ``interrupt_function`` (simulated
            annealing) is also asked to stop once the time is up.
        params:
            Sampler parameters such as ``num_reads``, ``seed`` or ``chain_strength``.

    Returns:
        The resolved, non-empty sample set.

    Raises:
        AnnealerTimeoutError: If no answer arrived within ``timeout`` seconds.
        AnnealerError: If the sampler raised (the message names the sampler and the original
            error, with anything that looks like an API token hidden) or returned no sample.
    """
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds or None, got {timeout!r}")
    sampler_name = type(sampler).__name__
    kwargs = sampler.remove_unknown_kwargs(**{k: v for k, v in params.items() if v is not None})

    stop = threading.Event()
    if timeout is not None and "interrupt_function" in sampler.parameters:
        kwargs.setdefault("interrupt_function", stop.is_set)

    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            sampleset = sampler.sample(bqm, **kwargs)
            # QPU and hybrid sample sets are futures: resolve them inside the time limit.
            sampleset.resolve()
            outcome["sampleset"] = sampleset
        except Exception as exc:
            outcome["error"] = exc

    if timeout is None:
        work()
    else:
        worker = threading.Thread(target=work, name=f"sample_qubo[{sampler_name}]", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            stop.set()
            raise AnnealerTimeoutError(
                f"annealer {sampler_name} did not answer within timeout={timeout} s"
            )

    if "error" in outcome:
        exc = outcome["error"]
        if isinstance(exc, AnnealerError):
            raise exc
        message = str(exc)
        scrubbed = scrub(message)
        error = AnnealerError(f"annealer {sampler_name} failed: {type(exc).__name__}: {scrubbed}")
        # Chaining would print the original message, so drop it when it held a secret.
        raise error from (exc if scrubbed == message else None)

    sampleset: dimod.SampleSet | None = outcome.get("sampleset")
    if sampleset is None or len(sampleset) == 0:
        raise AnnealerError(f"annealer {sampler_name} returned an empty sample set")
    return sampleset
