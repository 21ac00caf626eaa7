"""Q-SVR: an epsilon-SVR whose dual is solved as a QUBO by an annealer."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any, ClassVar

import dimod
import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from optuna_qsvr.predictors._annealers import ANNEALER_NAMES, resolve_annealer, sample_qubo
from optuna_qsvr.predictors._base import AnnealerError, AnnealerTimeoutError
from optuna_qsvr.predictors._qubo import bqm_from_matrix, decode_samples, qubo_matrix

__all__ = ["QSVR"]

_COMBINE_METHODS = ("reference", "best", "mean")
# Finite bounds exclude infinity, which an open-ended Interval would accept.
_POSITIVE = Interval(Real, 0, math.inf, closed="neither")
_NON_NEGATIVE = Interval(Real, 0, math.inf, closed="left")
# Floor for losses before taking their inverse: a perfect fit must not divide by zero.
_TINY_LOSS = 1e-12


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - np.max(z))
    return e / e.sum()


def _log_cosh2(residuals: np.ndarray) -> np.ndarray:
    # The reference's numerically stable log2(cosh(r)), summed over points.
    return (np.logaddexp2(residuals, -residuals) - 1.0).sum(axis=-1)


def combination_weights(preds: np.ndarray, y: np.ndarray, method: str) -> np.ndarray:
    """Weights of the candidate solutions, scored by their predictions on the training set.

    ``"reference"`` averages the reference's seven weightings: normalised 1/MSE, softmax of
    1/MSE, normalised 1/log-cosh, softmax of 1/log-cosh, the best sample alone, the plain
    mean and softmax of R^2. The reference overwrites its MSE scores with R^2 values by
    mistake (and leaves its R^2 array at zero); the intended scores are used here.

    Args:
        preds:
            Predictions of each candidate on the training points, shape ``(S, N)``.
        y:
            Training targets, shape ``(N,)``.
        method:
            ``"reference"``, ``"best"`` (lowest training MSE) or ``"mean"``.

    Returns:
        Non-negative weights of shape ``(S,)`` summing to one.
    """
    n_candidates = preds.shape[0]
    if method == "mean" or n_candidates == 1:
        return np.full(n_candidates, 1.0 / n_candidates)
    residuals = y[None, :] - preds
    mse = np.mean(residuals**2, axis=1)
    best = np.zeros(n_candidates)
    best[np.argmin(mse)] = 1.0
    if method == "best":
        return best
    inv_mse = 1.0 / np.maximum(mse, _TINY_LOSS)
    inv_lc = 1.0 / np.maximum(_log_cosh2(residuals), _TINY_LOSS)
    ss_tot = np.sum((y - y.mean()) ** 2)
    r2 = 1.0 - np.sum(residuals**2, axis=1) / ss_tot if ss_tot > 0 else np.zeros(n_candidates)
    weightings = np.stack(
        [
            inv_mse / inv_mse.sum(),
            _softmax(inv_mse),
            inv_lc / inv_lc.sum(),
            _softmax(inv_lc),
            best,
            np.full(n_candidates, 1.0 / n_candidates),
            _softmax(r2),
        ]
    )
    return weightings.mean(axis=0)


def kkt_intercepts(
    alpha: np.ndarray,
    alpha_hat: np.ndarray,
    f0: np.ndarray,
    y: np.ndarray,
    epsilon: float,
    C: float,
) -> np.ndarray:
    """Bias of each candidate: the average of the textbook KKT estimates.

    ``b = y_i - epsilon - f0(x_i)`` for ``0 < alpha_i < C`` and ``b = y_i + epsilon - f0(x_i)``
    for ``0 < alpha_hat_i < C``; with no such point, ``mean(y - f0)``.

    Args:
        alpha:
            Shape ``(S, N)``.
        alpha_hat:
            Shape ``(S, N)``.
        f0:
            Kernel expansion without bias on the training points, shape ``(S, N)``.
        y:
            Training targets, shape ``(N,)``.
        epsilon:
            Tube half-width.
        C:
            Box constraint.

    Returns:
        Shape ``(S,)``.
    """
    free = (alpha > 0) & (alpha < C)
    free_hat = (alpha_hat > 0) & (alpha_hat < C)
    gap = y[None, :] - f0
    total = np.where(free, gap - epsilon, 0.0).sum(axis=1) + np.where(
        free_hat, gap + epsilon, 0.0
    ).sum(axis=1)
    count = free.sum(axis=1) + free_hat.sum(axis=1)
    fallback = gap.mean(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), fallback)


def _lowest_distinct(bits: np.ndarray, energies: np.ndarray, n: int) -> np.ndarray:
    order = np.argsort(energies, kind="stable")
    _, first = np.unique(bits[order], axis=0, return_index=True)
    return order[np.sort(first)[:n]]


def _ordered_bits(sampleset: dimod.SampleSet, n_variables: int) -> np.ndarray:
    labels = np.asarray(list(sampleset.variables))
    if labels.shape != (n_variables,) or not np.array_equal(
        np.sort(labels), np.arange(n_variables)
    ):
        raise ValueError(
            f"the annealer returned variables {labels[:5].tolist()}..., "
            f"expected the labels 0..{n_variables - 1}"
        )
    bits = np.asarray(sampleset.record.sample)[:, np.argsort(labels)]
    # A QUBO's samples are 0/1: spins (+-1) or other values would decode to nonsense.
    if not np.isin(bits, (0, 1)).all():
        raise AnnealerError(
            f"the annealer returned values {np.unique(bits)[:5].tolist()}, not the bits 0 and 1"
            " of a QUBO"
        )
    return bits


class QSVR(RegressorMixin, BaseEstimator):
    """Epsilon-SVR with an RBF kernel trained by annealing the QUBO of its dual.

    Each dual variable is a ``K``-bit fixed-point number (see
    :func:`optuna_qsvr.predictors._qubo.qubo_matrix`), so ``N`` training points make a QUBO of
    ``2 * K * N`` binary variables, sampled by a dimod annealer. The ``n_combined``
    lowest-energy distinct samples are combined into one model (Pasetto et al. 2022). Above
    ``max_points`` points, the data are shuffled and split into ``ceil(N / max_points)``
    nearly equal parts, one Q-SVR is trained per part and their predictions are averaged, so
    no point is dropped and each QUBO stays small enough for a QPU clique embedding.

    Every combination is linear in the dual coefficients, so the fitted model is always a
    single kernel expansion ``rbf_kernel(X, support_vectors_, gamma) @ dual_coef_ +
    intercept_``.

    Args:
        K:
            Bits per dual variable.
        B:
            Base of the fixed-point encoding.
        k0:
            Exponent offset of the encoding: ``alpha = sum_k B**(k - k0) * a_k``.
        epsilon:
            Half-width of the insensitive tube.
        xi:
            Penalty weight of the equality constraint ``sum(alpha - alpha_hat) = 0``.
        gamma:
            RBF kernel coefficient, or ``"scale"`` for scikit-learn's
            ``1 / (n_features * X.var())``. The fitted value is ``gamma_``.
        C:
            Box constraint, only used to pick the support vectors for the bias (the encoding
            bounds the dual variables by itself).
        beta:
            Penalty on ``alpha_n * alpha_hat_n``.
        num_reads:
            Reads requested from the annealer per QUBO.
        n_combined:
            How many lowest-energy distinct samples are combined.
        combine:
            ``"reference"`` (average of the reference's seven weightings), ``"best"`` (lowest
            training MSE) or ``"mean"``.
        max_points:
            Largest number of points in one QUBO; more points make an ensemble.
        annealer:
            A :class:`dimod.Sampler` or a name accepted by
            :func:`optuna_qsvr.predictors._annealers.resolve_annealer`.
        annealer_params:
            Extra keyword arguments for the sampler, e.g. ``{"num_sweeps": 500}``; those it
            does not declare are dropped by dimod, with a ``SamplerUnknownArgWarning``.
        chain_strength:
            Chain strength for embedding composites; ``None`` means ``10 * ceil(max|Q|)``
            as in the reference. Only passed to samplers that accept it.
        timeout:
            Seconds allowed for all annealer calls of one :meth:`fit`, or ``None``.
        random_state:
            Seed of the data partition and of the annealer's ``seed`` when it has one.

    Parameters are checked by scikit-learn (``_parameter_constraints``) when :meth:`fit` or
    :meth:`to_bqm` is called, raising ``InvalidParameterError`` (a ``ValueError``).

    Attributes:
        support_vectors_, dual_coef_, intercept_, gamma_:
            The fitted kernel expansion.
        n_estimators_:
            Q-SVRs in the ensemble (one per part of the data).
        n_annealer_calls_:
            Sampler calls made by the last fit (each costs QPU time on real hardware).
        energies_, chain_break_fractions_, combination_weights_:
            Per ensemble member: energies of the combined samples, mean chain-break fraction
            (``NaN`` without embedding) and the samples' weights.
        qubo_build_seconds_, anneal_seconds_:
            Time spent building the QUBOs and waiting for the annealer.

    Example:

        .. code-block:: python

            import numpy as np
            from optuna_qsvr.predictors._qsvr import QSVR

            X = np.linspace(0, 1, 20)[:, None]
            y = 0.5 + 0.4 * np.sin(6 * X[:, 0])
            model = QSVR(num_reads=100, random_state=0).fit(X, y)
            model.predict(X[:3])
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "K": [Interval(Integral, 1, None, closed="left")],
        "B": [_POSITIVE],
        "k0": [Interval(Real, -math.inf, math.inf, closed="neither")],
        "epsilon": [_NON_NEGATIVE],
        "xi": [_NON_NEGATIVE],
        "gamma": [_POSITIVE, StrOptions({"scale"})],
        "C": [_POSITIVE],
        "beta": [_NON_NEGATIVE],
        "num_reads": [Interval(Integral, 1, None, closed="left")],
        "n_combined": [Interval(Integral, 1, None, closed="left")],
        "combine": [StrOptions(set(_COMBINE_METHODS))],
        "max_points": [Interval(Integral, 1, None, closed="left")],
        # The type resolve_annealer and sample_qubo rely on (sample, parameters and
        # remove_unknown_kwargs): every Ocean sampler and composite is one.
        "annealer": [StrOptions(set(ANNEALER_NAMES)), dimod.Sampler],
        "annealer_params": [Mapping, None],
        "chain_strength": [_POSITIVE, None],
        "timeout": [_POSITIVE, None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        K: int = 3,
        B: float = 0.5,
        k0: float = 0.005,
        epsilon: float = 0.02,
        xi: float = 0.01,
        gamma: float | str = 0.1,
        C: float = 67.61,
        beta: float = 0.0,
        num_reads: int = 1000,
        n_combined: int = 4,
        combine: str = "reference",
        max_points: int = 20,
        annealer: str | dimod.Sampler = "simulated",
        annealer_params: Mapping[str, Any] | None = None,
        chain_strength: float | None = None,
        timeout: float | None = None,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.K = K
        self.B = B
        self.k0 = k0
        self.epsilon = epsilon
        self.xi = xi
        self.gamma = gamma
        self.C = C
        self.beta = beta
        self.num_reads = num_reads
        self.n_combined = n_combined
        self.combine = combine
        self.max_points = max_points
        self.annealer = annealer
        self.annealer_params = annealer_params
        self.chain_strength = chain_strength
        self.timeout = timeout
        self.random_state = random_state

    def _gamma_for(self, X: np.ndarray) -> float:
        if self.gamma != "scale":
            return float(self.gamma)
        var = float(np.var(X))
        return 1.0 / (X.shape[1] * var) if var > 0 else 1.0

    def _qubo(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        return qubo_matrix(
            X,
            y,
            K=self.K,
            B=self.B,
            k0=self.k0,
            epsilon=self.epsilon,
            xi=self.xi,
            gamma=getattr(self, "gamma_", None) or self._gamma_for(X),
            beta=self.beta,
        )

    def to_bqm(self, X: np.ndarray, y: np.ndarray) -> dimod.BinaryQuadraticModel:
        """Return the QUBO of the dual on ``(X, y)`` as a BQM, without sampling it.

        Args:
            X:
                Inputs of shape ``(N, d)``; all ``N`` points go into one QUBO.
            y:
                Targets of shape ``(N,)``.

        Returns:
            A binary BQM over ``2 * K * N`` variables labelled in the order of
            :func:`optuna_qsvr.predictors._qubo.qubo_matrix`.
        """
        self._validate_params()
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        return bqm_from_matrix(self._qubo(X, y))

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any) -> QSVR:
        """Train the Q-SVR (or the ensemble of Q-SVRs) on ``(X, y)``.

        Args:
            X:
                Inputs of shape ``(n_samples, n_features)``.
            y:
                Targets of shape ``(n_samples,)``.

        Returns:
            ``self``.

        Raises:
            AnnealerError: If the annealer failed or returned nothing usable.
            AnnealerTimeoutError: If the annealer calls exceeded ``timeout``.
        """
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        self.gamma_ = self._gamma_for(X)
        rng = check_random_state(self.random_state)
        sampler = resolve_annealer(self.annealer)

        n_samples = X.shape[0]
        if n_samples <= self.max_points:
            groups = [np.arange(n_samples)]
        else:
            groups = np.array_split(
                rng.permutation(n_samples), math.ceil(n_samples / self.max_points)
            )

        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        self.qubo_build_seconds_ = 0.0
        self.anneal_seconds_ = 0.0
        self.n_annealer_calls_ = 0
        self.energies_: list[np.ndarray] = []
        self.chain_break_fractions_: list[float] = []
        self.combination_weights_: list[np.ndarray] = []
        coefs = np.zeros(n_samples)
        intercepts = []
        for members in groups:
            coef, intercept = self._fit_member(sampler, X[members], y[members], rng, deadline)
            coefs[members] = coef / len(groups)
            intercepts.append(intercept)

        support = coefs != 0.0
        self.support_ = np.flatnonzero(support)
        self.support_vectors_ = X[support]
        self.dual_coef_ = coefs[support]
        self.intercept_ = float(np.mean(intercepts))
        self.n_estimators_ = len(groups)
        return self

    def _fit_member(
        self,
        sampler: dimod.Sampler,
        X: np.ndarray,
        y: np.ndarray,
        rng: np.random.RandomState,
        deadline: float | None,
    ) -> tuple[np.ndarray, float]:
        n_points = X.shape[0]
        start = time.perf_counter()
        Q = self._qubo(X, y)
        bqm = bqm_from_matrix(Q)
        self.qubo_build_seconds_ += time.perf_counter() - start

        # Our own settings go only to samplers that take them (ExactSolver takes no
        # num_reads); the user's annealer_params always go, so that dimod warns about any the
        # sampler does not know.
        accepted = sampler.parameters
        params: dict[str, Any] = {}
        if "num_reads" in accepted:
            params["num_reads"] = self.num_reads
        if "seed" in accepted:
            params["seed"] = int(rng.randint(0, 2**31 - 1))
        if "chain_strength" in accepted:
            params["chain_strength"] = (
                self.chain_strength
                if self.chain_strength is not None
                else 10.0 * math.ceil(np.max(np.abs(Q)))
            )
        params.update(self.annealer_params or {})

        remaining = None
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AnnealerTimeoutError(
                    f"QSVR.fit exceeded timeout={self.timeout} s before annealing every QUBO"
                )
        start = time.perf_counter()
        self.n_annealer_calls_ += 1
        try:
            sampleset = sample_qubo(sampler, bqm, timeout=remaining, **params)
        except AnnealerTimeoutError as exc:
            raise AnnealerTimeoutError(
                f"QSVR.fit exceeded timeout={self.timeout} s: {exc}"
            ) from exc
        self.anneal_seconds_ += time.perf_counter() - start

        bits = _ordered_bits(sampleset, bqm.num_variables)
        energies = np.asarray(sampleset.record.energy, dtype=float)
        if not np.isfinite(energies).all():
            # They choose the samples to combine: NaN would choose at random.
            raise AnnealerError("the annealer returned non-finite energies")
        chosen = _lowest_distinct(bits, energies, self.n_combined)
        self.energies_.append(energies[chosen])
        record = sampleset.record
        self.chain_break_fractions_.append(
            float(np.mean(record.chain_break_fraction))
            if "chain_break_fraction" in record.dtype.names
            else float("nan")
        )

        alpha, alpha_hat = decode_samples(bits[chosen], n_points, self.K, self.B, self.k0)
        coef = alpha - alpha_hat
        f0 = coef @ rbf_kernel(X, gamma=self.gamma_)
        intercepts = kkt_intercepts(alpha, alpha_hat, f0, y, self.epsilon, self.C)
        weights = combination_weights(f0 + intercepts[:, None], y, self.combine)
        self.combination_weights_.append(weights)
        return weights @ coef, float(weights @ intercepts)

    def predict(self, X: Any) -> np.ndarray:
        """Predict targets for ``X``.

        Args:
            X:
                Inputs of shape ``(n_samples, n_features)``.

        Returns:
            Predictions of shape ``(n_samples,)``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        if self.dual_coef_.size == 0:
            return np.full(X.shape[0], self.intercept_)
        return rbf_kernel(X, self.support_vectors_, gamma=self.gamma_) @ self.dual_coef_ + (
            self.intercept_
        )
