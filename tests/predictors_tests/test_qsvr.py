from __future__ import annotations

import itertools
import math
import time
import warnings
from types import MappingProxyType
from typing import Any

import dimod
import numpy as np
import pytest
from dimod.exceptions import SamplerUnknownArgWarning
from dwave.samplers import SimulatedAnnealingSampler
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold, train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import MinMaxScaler
from sklearn.svm import SVR, NuSVR
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import check_param_validation, parametrize_with_checks

from optuna_qsvr.predictors import _qsvr
from optuna_qsvr.predictors._qsvr import (
    QSVR,
    _lowest_distinct,
    _ordered_bits,
    combination_weights,
    kkt_intercepts,
)
from optuna_qsvr.predictors._qubo import precision_vector, qubo_matrix

# Small anneals keep the suite fast; the QUBOs here have at most 120 variables.
FAST = dict(num_reads=100, annealer_params={"num_sweeps": 200})


def _sine(n_points: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(seed).uniform(size=n_points)
    return x[:, None], (np.sin(2 * np.pi * x) + 1) / 2


def _digits_mlp_curves(n_configs: int = 30, n_epochs: int = 20, seed: int = 0) -> np.ndarray:
    """Validation-accuracy curves of MLPs with random hyperparameters on sklearn's digits."""
    X, y = load_digits(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(
        X / 16.0, y, train_size=500, test_size=400, random_state=seed, stratify=y
    )
    rng = np.random.default_rng(seed)
    curves = np.empty((n_configs, n_epochs))
    for i in range(n_configs):
        model = MLPClassifier(
            hidden_layer_sizes=(int(rng.choice([8, 16, 32])),),
            learning_rate_init=10 ** rng.uniform(-4, -1.5),
            alpha=10 ** rng.uniform(-6, -1),
            batch_size=int(rng.choice([64, 128, 256])),
            random_state=i,
        )
        for epoch in range(n_epochs):
            model.partial_fit(X_train, y_train, classes=np.arange(10))
            curves[i, epoch] = model.score(X_val, y_val)
    return curves


@pytest.fixture(scope="session")
def digits_curves() -> tuple[np.ndarray, np.ndarray]:
    curves = _digits_mlp_curves()
    X = MinMaxScaler().fit_transform(curves[:, :5])
    y = MinMaxScaler().fit_transform(curves[:, [-1]])[:, 0]
    return X, y


def test_sine_close_to_nusvr():
    X, y = _sine(40, seed=0)
    train, test = np.arange(20), np.arange(20, 40)
    # gamma=10 suits one feature on [0, 1]; both models get the same kernel.
    qsvr = QSVR(gamma=10.0, random_state=0, **FAST).fit(X[train], y[train])
    nusvr = NuSVR(C=67.61, gamma=10.0).fit(X[train], y[train])
    r2_q = r2_score(y[test], qsvr.predict(X[test]))
    r2_svr = r2_score(y[test], nusvr.predict(X[test]))
    # Measured: Q-SVR 0.99, NuSVR 1.00.
    assert r2_q >= r2_svr - 0.05
    assert qsvr.n_estimators_ == 1


def _cross_validated_r2(X, y, make_model, max_train=None):
    scores = []
    for train, test in KFold(5, shuffle=True, random_state=0).split(X):
        train = train[:max_train]
        model = make_model().fit(X[train], y[train])
        scores.append(r2_score(y[test], model.predict(X[test])))
    return float(np.mean(scores))


def test_learning_curves_single_and_ensemble_vs_nusvr(digits_curves):
    X, y = digits_curves
    r2_svr20 = _cross_validated_r2(X, y, lambda: NuSVR(C=67.61, gamma=0.1), max_train=20)
    r2_q20 = _cross_validated_r2(X, y, lambda: QSVR(random_state=0, **FAST), max_train=20)
    r2_svr = _cross_validated_r2(X, y, lambda: NuSVR(C=67.61, gamma=0.1))
    # 24 training curves per fold and max_points=20: an ensemble of two 12-point Q-SVRs.
    r2_ens = _cross_validated_r2(X, y, lambda: QSVR(random_state=0, **FAST))
    # The encoding caps every dual variable at sum(p) ~ 1.75 whatever C is, so with the
    # reference's near-linear kernel (gamma=0.1 on [0, 1] features) a Q-SVR behaves like an
    # SVR with C ~ 1.75: it cannot match NuSVR(C=67.61) exactly but tracks the capped SVR.
    r2_capped = _cross_validated_r2(
        X,
        y,
        lambda: SVR(C=precision_vector(3, 0.5, 0.005).sum(), epsilon=0.02, gamma=0.1),
        max_train=20,
    )
    # Measured (mean over 5 folds): NuSVR-20 0.71, Q-SVR-20 0.69, capped SVR-20 0.68,
    # NuSVR-24 0.69, Q-SVR ensemble 0.65.
    assert r2_q20 >= r2_svr20 - 0.1
    assert r2_q20 >= r2_capped - 0.05
    assert r2_ens >= r2_svr - 0.1
    assert r2_ens > 0.5


class _Clock:
    """A stand-in for the ``time`` module: ``perf_counter`` moves one second per read,
    ``monotonic`` stands still."""

    def __init__(self) -> None:
        self.reads = 0.0

    def perf_counter(self) -> float:
        self.reads += 1.0
        return self.reads

    def monotonic(self) -> float:
        return 100.0


def test_an_ensembles_times_add_up_over_its_qubos(monkeypatch):
    monkeypatch.setattr(_qsvr, "time", _Clock())
    X, y = _sine(45, seed=1)
    model = QSVR(max_points=20, gamma=10.0, random_state=0, **FAST).fit(X, y)
    # Three QUBOs, each built between two reads and annealed between two more.
    assert model.n_estimators_ == 3
    assert model.qubo_build_seconds_ == 3.0
    assert model.anneal_seconds_ == 3.0


def test_a_fit_with_time_left_anneals_even_under_a_second(monkeypatch):
    # The clock stands still: the annealer call has the whole 0.9 s left, and an exact solve
    # of six variables needs far less.
    monkeypatch.setattr(_qsvr, "time", _Clock())
    X, y = _sine(3, seed=1)
    model = QSVR(K=1, annealer=dimod.ExactSolver(), timeout=0.9, random_state=0).fit(X, y)
    assert model.n_annealer_calls_ == 1


def test_ensemble_partitions_every_point():
    X, y = _sine(45, seed=1)
    model = QSVR(max_points=20, gamma=10.0, random_state=0, **FAST).fit(X, y)
    assert model.n_estimators_ == math.ceil(45 / 20)
    assert len(model.energies_) == model.n_estimators_
    assert model.support_vectors_.shape == (model.dual_coef_.shape[0], 1)
    # Support vectors come from all three parts, so no part was dropped.
    assert model.support_.size > 30
    expected = (
        np.exp(-10.0 * (X[:5] - model.support_vectors_.T) ** 2) @ model.dual_coef_
        + model.intercept_
    )
    np.testing.assert_allclose(model.predict(X[:5]), expected)
    assert r2_score(y, model.predict(X)) > 0.9


def _objective(bits, X, y, K, B, k0, epsilon, xi, gamma):
    n = len(y)
    p = B ** (np.arange(K) - k0)
    alpha = np.array([bits[i * K : (i + 1) * K] @ p for i in range(n)])
    alpha_hat = np.array([bits[K * n + i * K : K * n + (i + 1) * K] @ p for i in range(n)])
    d = alpha - alpha_hat
    G = np.exp(-gamma * ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))
    energy = 0.5 * d @ G @ d + epsilon * (alpha + alpha_hat).sum() - y @ d + xi * d.sum() ** 2
    return energy, alpha, alpha_hat


def test_exact_solver_fit_is_the_ground_state_with_kkt_bias():
    X = np.array([[0.0], [0.4], [1.0]])
    y = np.array([0.2, 0.9, 0.4])
    params = dict(K=2, B=0.5, k0=0.0, epsilon=0.02, xi=0.01, gamma=2.0)
    model = QSVR(annealer="exact", n_combined=1, combine="best", **params).fit(X, y)

    energies = []
    for bits in itertools.product((0, 1), repeat=12):
        energies.append(_objective(np.array(bits), X, y, **params)[0])
    best = np.array(list(itertools.product((0, 1), repeat=12))[int(np.argmin(energies))])
    energy, alpha, alpha_hat = _objective(best, X, y, **params)
    assert model.energies_[0][0] == pytest.approx(energy, abs=1e-10)

    coef = alpha - alpha_hat
    G = np.exp(-2.0 * (X - X.T) ** 2)
    f0 = G @ coef
    estimates = [y[i] - 0.02 - f0[i] for i in range(3) if 0 < alpha[i] < 67.61]
    estimates += [y[i] + 0.02 - f0[i] for i in range(3) if 0 < alpha_hat[i] < 67.61]
    bias = np.mean(estimates) if estimates else np.mean(y - f0)
    np.testing.assert_allclose(model.predict(X), f0 + bias, atol=1e-10)


def test_bias_falls_back_without_support_vectors():
    # epsilon larger than every |y|: the ground state is all zeros, so no support vector.
    X = np.array([[0.0], [1.0]])
    y = np.array([0.3, 0.1])
    model = QSVR(annealer="exact", K=1, epsilon=5.0, n_combined=1).fit(X, y)
    assert model.dual_coef_.size == 0
    np.testing.assert_allclose(model.predict(X), [0.2, 0.2], atol=1e-12)


def test_reproducible_with_random_state():
    X, y = _sine(30, seed=2)
    first = QSVR(max_points=10, random_state=7, **FAST).fit(X, y).predict(X)
    second = QSVR(max_points=10, random_state=7, **FAST).fit(X, y).predict(X)
    np.testing.assert_array_equal(first, second)


def test_to_bqm_matches_qubo():
    X, y = _sine(5, seed=3)
    model = QSVR(K=2, gamma=3.0)
    bqm = model.to_bqm(X, y)
    assert isinstance(bqm, dimod.BinaryQuadraticModel)
    assert bqm.num_variables == 2 * 2 * 5
    Q = qubo_matrix(X, y, K=2, gamma=3.0)
    bits = np.random.default_rng(0).integers(0, 2, size=(10, 20))
    np.testing.assert_allclose(
        bqm.energies((bits, range(20))), np.einsum("si,ij,sj->s", bits, Q, bits)
    )
    with pytest.raises(InvalidParameterError, match="'K' parameter of QSVR"):
        QSVR(K=0).to_bqm(X, y)


def test_combination_weights():
    y = np.array([0.0, 1.0, 2.0])
    preds = np.array([[0.0, 1.0, 2.1], [0.5, 1.5, 1.0], [0.0, 0.0, 0.0]])
    for method in ("reference", "best", "mean"):
        weights = combination_weights(preds, y, method)
        assert weights.shape == (3,)
        assert weights.sum() == pytest.approx(1.0)
        assert np.all(weights >= 0)
    np.testing.assert_array_equal(combination_weights(preds, y, "best"), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(combination_weights(preds, y, "mean"), [1 / 3] * 3)
    reference = combination_weights(preds, y, "reference")
    assert reference[0] > reference[1] > reference[2]
    # A perfect candidate must not produce NaN weights.
    assert np.all(np.isfinite(combination_weights(np.vstack([y, preds[1]]), y, "reference")))


def test_scale_gamma_is_one_over_features_times_variance_else_one():
    """gamma="scale" as scikit-learn's SVR: 1 / (n_features * X.var()); 1 for constant X."""
    X = np.array([[0.0, 0.1], [0.2, 0.3], [0.4, 0.8]])  # variance below 1
    y = np.array([0.1, 0.2, 0.3])
    scaled = QSVR(gamma="scale").to_bqm(X, y)
    assert scaled == QSVR(gamma=1.0 / (2 * X.var())).to_bqm(X, y)
    assert scaled != QSVR(gamma=1.0).to_bqm(X, y)
    constant = np.full((3, 2), 0.5)
    assert QSVR(gamma="scale").to_bqm(constant, y) == QSVR(gamma=1.0).to_bqm(constant, y)


def test_the_lowest_distinct_samples_break_ties_in_sample_order():
    """Reads come back with many equal energies: the chosen candidates are the lowest-energy
    distinct bit vectors, ties taken in read order, so a fit is reproducible."""
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, (60, 4))  # 16 possible vectors: many duplicates
    energies = rng.integers(0, 3, 60).astype(float)
    chosen, seen = [], set()
    for i in sorted(range(60), key=lambda i: (energies[i], i)):
        if tuple(bits[i]) not in seen:
            seen.add(tuple(bits[i]))
            chosen.append(i)
    assert _lowest_distinct(bits, energies, 5).tolist() == chosen[:5]
    assert _lowest_distinct(bits, energies, 100).tolist() == chosen  # all distinct ones


def test_bits_come_back_in_variable_order_and_foreign_labels_are_refused():
    sampleset = dimod.SampleSet.from_samples(([[1, 0, 0], [0, 1, 1]], [2, 0, 1]), "BINARY", 0.0)
    np.testing.assert_array_equal(_ordered_bits(sampleset, 3), [[0, 0, 1], [1, 1, 0]])
    for labels, n in (([1, 2, 3], 3), ([0, 1, 2], 4)):
        wrong = dimod.SampleSet.from_samples(([[1, 0, 0]], labels), "BINARY", 0.0)
        with pytest.raises(ValueError, match=f"expected the labels 0..{n - 1}"):
            _ordered_bits(wrong, n)


def test_kkt_intercepts_average_the_free_points_else_the_mean_gap():
    """Free points are strictly inside the box (0, C): the first candidate has one free alpha
    (0.5; 1.0 sits on the bound C) and one free alpha_hat (0.25); the second has none (its
    alpha_hat of 1.0 is at the bound), so its bias is its own mean gap; the third has one."""
    y = np.array([1.0, 2.0, 3.0, 4.0])
    f0 = np.array([[0.5] * 4, [0.5] * 4, [1.5] * 4])  # gaps 0.5, 1.5, 2.5, 3.5 (less 1)
    alpha = np.array([[0.5, 0.0, 1.0, 1.5], [0.0] * 4, [0.0, 0.0, 0.7, 0.0]])
    alpha_hat = np.array([[0.0, 0.25, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], [0.0] * 4])
    b = kkt_intercepts(alpha, alpha_hat, f0, y, epsilon=0.1, C=1.0)
    # ((0.5 - 0.1) + (1.5 + 0.1)) / 2; then the mean gap; then one free point: 1.5 - 0.1.
    np.testing.assert_allclose(b, [1.0, 2.0, 1.4], rtol=1e-12)


@pytest.mark.parametrize(
    ("y", "preds"),
    [
        ([0.0, 1.0, 2.0], [[0.5, 1.5, 2.5], [1.0, 0.0, 2.0], [2.0, 2.0, 0.0]]),
        ([0.0, 1.0, 2.0], [[2.0, 2.0, 0.0], [1.0, 0.0, 2.0], [0.5, 1.5, 2.5]]),  # best last
        ([0.0, 1.0, 2.0], [[1.0, 0.0, 2.0], [0.5, 1.5, 2.5]]),  # two candidates
        ([1.0, 1.0, 1.0], [[0.5, 1.5, 1.0], [1.0, 0.0, 2.0], [2.0, 2.0, 0.0]]),  # no variance
        ([0.0, 0.5, 1.0], [[0.25, 0.75, 1.25], [0.5, 0.0, 1.0], [1.0, 1.0, 0.0]]),  # little
    ],
)
def test_reference_weights_average_the_seven_weightings(y, preds):
    """Each weighting recomputed independently, on candidates whose losses are moderate (no
    softmax saturates): log-cosh is log2(cosh(r ln 2)) summed over the points; R^2 is 0
    for every candidate when the targets do not vary."""
    y, preds = np.array(y), np.array(preds)
    residuals = y - preds
    mse = (residuals**2).mean(axis=1)
    log_cosh = np.array(
        [sum(math.log2(math.cosh(r * math.log(2))) for r in row) for row in residuals]
    )
    ss_tot = ((y - y.mean()) ** 2).sum()
    r2 = 1 - (residuals**2).sum(axis=1) / ss_tot if ss_tot else np.zeros(len(preds))
    best = (mse == mse.min()).astype(float)

    def softmax(z):
        e = np.exp(z - z.max())
        return e / e.sum()

    parts = [
        (1 / mse) / (1 / mse).sum(),
        softmax(1 / mse),
        (1 / log_cosh) / (1 / log_cosh).sum(),
        softmax(1 / log_cosh),
        best,
        np.full(len(preds), 1 / len(preds)),
        softmax(r2),
    ]
    np.testing.assert_allclose(
        combination_weights(preds, y, "reference"), np.mean(parts, axis=0), rtol=1e-12
    )


@pytest.mark.parametrize(
    "params,match",
    [
        ({"K": 0}, r"'K' parameter of QSVR must be an int in the range \[1, inf\)\. Got 0"),
        ({"K": 2.0}, "'K' parameter"),
        ({"num_reads": 0}, "'num_reads' parameter"),
        ({"B": math.inf}, "'B' parameter"),
        ({"k0": math.nan}, "'k0' parameter"),
        ({"epsilon": -0.1}, "'epsilon' parameter"),
        ({"gamma": -1.0}, "'gamma' parameter of QSVR must be .* or a str among {'scale'}"),
        ({"gamma": "auto"}, "'gamma' parameter"),
        ({"combine": "median"}, "'combine' parameter"),
        ({"timeout": 0}, "'timeout' parameter"),
        ({"chain_strength": -1.0}, "'chain_strength' parameter"),
        ({"annealer_params": [1, 2]}, "'annealer_params' parameter"),
        ({"annealer": "quantum-magic"}, "'annealer' parameter .* Got 'quantum-magic'"),
        ({"annealer": 42}, "'annealer' parameter .* instance of 'dimod.core.sampler.Sampler'"),
        ({"random_state": "seed"}, "'random_state' parameter"),
    ],
)
def test_invalid_params_raise_on_fit(params, match):
    X, y = _sine(4, seed=0)
    with pytest.raises(InvalidParameterError, match=match):
        QSVR(**params).fit(X, y)


def test_bool_bits_are_rejected():
    # scikit-learn counts True as an Integral; the QUBO builder does not.
    X, y = _sine(4, seed=0)
    with pytest.raises(ValueError, match="K must be an integer >= 1, got True"):
        QSVR(K=True).fit(X, y)


def test_valid_edge_params_are_accepted():
    X, y = _sine(3, seed=0)
    # NumPy integers, zero penalties, a Mapping other than dict and a sampler instance.
    model = QSVR(
        K=np.int64(1),
        epsilon=0.0,
        xi=0.0,
        k0=-2.5,
        annealer=dimod.ExactSolver(),
        annealer_params=MappingProxyType({}),
        random_state=np.random.RandomState(0),
    ).fit(X, y)
    assert model.n_annealer_calls_ == 1


def test_every_param_has_a_constraint():
    # scikit-learn's own check: each __init__ parameter is declared in _parameter_constraints
    # and an invalid value of any of them raises InvalidParameterError naming it.
    check_param_validation("QSVR", QSVR(num_reads=5, annealer_params={"num_sweeps": 20}))


def test_unfitted_and_unused_params():
    X, y = _sine(4, seed=0)
    with pytest.raises(NotFittedError):
        QSVR().predict(X)
    # dimod's own remove_unknown_kwargs drops what ExactSolver does not take, with a warning;
    # num_reads, which QSVR sets itself, goes only to samplers that accept it.
    with pytest.warns(SamplerUnknownArgWarning) as record:
        QSVR(annealer="exact", K=1, annealer_params={"num_sweeps": 5}).fit(X[:2], y[:2])
    assert [str(w.message) for w in record] == ["Ignoring unknown kwarg: 'num_sweeps'"]


def test_qpu_code_path_offline():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import dwave_networkx as dnx
    from dwave.system import EmbeddingComposite

    graph = dnx.pegasus_graph(16)
    qpu_like = EmbeddingComposite(
        dimod.StructureComposite(SimulatedAnnealingSampler(), list(graph.nodes), list(graph.edges))
    )
    X, y = _sine(4, seed=4)
    params = dict(gamma=10.0, num_reads=50, random_state=0)
    sweeps = {"num_sweeps": 1000}
    embedded = QSVR(
        annealer=qpu_like,
        annealer_params={**sweeps, "embedding_parameters": {"tries": 1, "random_seed": 0}},
        **params,
    ).fit(X, y)
    plain = QSVR(annealer_params=sweeps, **params).fit(X, y)
    assert len(embedded.chain_break_fractions_) == 1
    assert 0.0 <= embedded.chain_break_fractions_[0] <= 1.0
    assert np.isnan(plain.chain_break_fractions_[0])
    # Chains make the landscape much harder for simulated annealing (measured: best energy
    # -0.28 embedded vs -0.44 plain, R^2 on the points 0.75 vs 0.86), so the bounds only ask
    # for a clearly non-trivial solution: the all-zero solution has energy 0.
    best_embedded, best_plain = embedded.energies_[0][0], plain.energies_[0][0]
    assert best_plain < 0
    assert best_embedded <= 0.5 * best_plain
    assert r2_score(y, embedded.predict(X)) > 0.5
    np.testing.assert_allclose(embedded.predict(X), plain.predict(X), atol=0.25)


@parametrize_with_checks(
    [QSVR(num_reads=5, n_combined=2, annealer_params={"num_sweeps": 20}, random_state=0)]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


class _ChainRecorder(dimod.Sampler):
    """dimod's exact solver that takes ``chain_strength`` as an embedding composite does, and
    records what it was given."""

    def __init__(self) -> None:
        self.given: list[Any] = []

    @property
    def parameters(self) -> dict[str, list]:
        return {"chain_strength": []}

    @property
    def properties(self) -> dict[str, Any]:
        return {}

    def sample(self, bqm, chain_strength=None, **kwargs):
        self.given.append(chain_strength)
        return dimod.ExactSolver().sample(bqm)


def test_chain_strength_reaches_an_embedding_sampler_as_set_else_ten_times_the_largest_weight():
    X, y = _sine(3, seed=5)
    sampler = _ChainRecorder()
    QSVR(K=2, gamma=2.0, annealer=sampler).fit(X, y)
    Q = qubo_matrix(X, y, K=2, gamma=2.0)
    assert sampler.given == [10.0 * math.ceil(np.max(np.abs(Q)))]
    QSVR(K=2, gamma=2.0, annealer=sampler, chain_strength=3.5).fit(X, y)
    assert sampler.given[-1] == 3.5


def test_to_bqm_after_a_fit_uses_the_fitted_gamma():
    X, y = _sine(5, seed=6)
    model = QSVR(K=2, gamma="scale", annealer="exact").fit(X[:4] * 3.0, y[:4])
    other = QSVR(K=2, gamma=model.gamma_).to_bqm(X, y)
    assert model.gamma_ != QSVR()._gamma_for(X)  # the new inputs would give another gamma
    assert model.to_bqm(X, y) == other


def test_timings_and_combination_weights_are_kept_per_fit():
    X, y = _sine(6, seed=7)
    start = time.perf_counter()
    model = QSVR(K=2, gamma=2.0, num_reads=20, n_combined=3, random_state=0).fit(X, y)
    elapsed = time.perf_counter() - start
    assert 0.0 < model.qubo_build_seconds_ < elapsed
    assert 0.0 < model.anneal_seconds_ < elapsed
    [weights] = model.combination_weights_
    assert weights.shape == (3,) and weights.sum() == pytest.approx(1.0)
    # The weighting the model was given is the one applied: "best" puts all on one sample.
    best = QSVR(K=2, gamma=2.0, num_reads=20, n_combined=3, combine="best", random_state=0)
    assert sorted(best.fit(X, y).combination_weights_[0]) == [0.0, 0.0, 1.0]
    assert not np.array_equal(weights, best.combination_weights_[0])
