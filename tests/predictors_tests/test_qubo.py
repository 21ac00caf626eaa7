from __future__ import annotations

import itertools
import math

import dimod
import numpy as np
import pytest

from optuna_qsvr.predictors._qsvr import QSVR
from optuna_qsvr.predictors._qubo import (
    bqm_from_matrix,
    decode_samples,
    precision_vector,
    qubo_matrix,
)


def _bqm(X, y, **params) -> dimod.BinaryQuadraticModel:
    # The live path from a model's parameters to the BQM an annealer receives.
    return QSVR(**params).to_bqm(X, y)


def _dual_objective(bits, X, y, *, K, B, k0, epsilon, xi, gamma, beta):
    """The energy E of qsvr.md, written term by term from its scalar formula."""
    n_points = len(y)
    alpha = [sum(B ** (k - k0) * bits[n * K + k] for k in range(K)) for n in range(n_points)]
    offset = K * n_points
    alpha_hat = [
        sum(B ** (k - k0) * bits[offset + n * K + k] for k in range(K)) for n in range(n_points)
    ]
    energy = 0.0
    for n in range(n_points):
        for m in range(n_points):
            dist2 = sum((X[n][j] - X[m][j]) ** 2 for j in range(len(X[n])))
            energy += (
                0.5
                * (alpha[n] - alpha_hat[n])
                * (alpha[m] - alpha_hat[m])
                * math.exp(-gamma * dist2)
            )
    energy += epsilon * sum(alpha[n] + alpha_hat[n] for n in range(n_points))
    energy -= sum(y[n] * (alpha[n] - alpha_hat[n]) for n in range(n_points))
    energy += xi * sum(alpha[n] - alpha_hat[n] for n in range(n_points)) ** 2
    energy += beta * sum(alpha[n] * alpha_hat[n] for n in range(n_points))
    return energy


PARAMS = [
    dict(K=3, B=0.5, k0=0.005, epsilon=0.02, xi=0.01, gamma=0.1, beta=0.0),
    dict(K=2, B=2.0, k0=0.0, epsilon=0.1, xi=0.5, gamma=3.0, beta=0.7),
    dict(K=4, B=0.3, k0=-1.0, epsilon=0.0, xi=0.0, gamma=1.0, beta=0.0),
]


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("n_points,n_features", [(1, 1), (4, 3), (7, 2)])
def test_energy_equals_dual_objective(params, n_points, n_features):
    rng = np.random.default_rng(n_points * 10 + n_features)
    X = rng.normal(size=(n_points, n_features))
    y = rng.uniform(-1, 1, size=n_points)
    n_vars = 2 * params["K"] * n_points
    bits = rng.integers(0, 2, size=(25, n_vars))

    bqm = _bqm(X, y, **params)
    expected = [_dual_objective(b.tolist(), X.tolist(), y.tolist(), **params) for b in bits]

    assert bqm.num_variables == n_vars
    np.testing.assert_allclose(bqm.energies((bits, range(n_vars))), expected, atol=1e-10)
    Q = qubo_matrix(X, y, **params)
    np.testing.assert_allclose(np.einsum("si,ij,sj->s", bits, Q, bits), expected, atol=1e-10)


def test_matrix_is_upper_triangular_with_expected_shape():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 2))
    Q = qubo_matrix(X, rng.normal(size=5), K=3, beta=0.4)
    assert Q.shape == (30, 30)
    assert np.all(np.tril(Q, -1) == 0)


@pytest.mark.parametrize("n_points,K", [(2, 2), (3, 2)])
@pytest.mark.parametrize("params", [PARAMS[0], PARAMS[1]])
def test_exact_ground_state_matches_brute_force(n_points, K, params):
    params = {**params, "K": K}
    rng = np.random.default_rng(n_points)
    X = rng.uniform(size=(n_points, 2))
    y = rng.uniform(size=n_points)
    n_vars = 2 * K * n_points

    ground = dimod.ExactSolver().sample(_bqm(X, y, **params)).first.energy
    brute = min(
        _dual_objective(list(bits), X.tolist(), y.tolist(), **params)
        for bits in itertools.product((0, 1), repeat=n_vars)
    )
    assert ground == pytest.approx(brute, abs=1e-10)


def test_precision_vector():
    np.testing.assert_allclose(
        precision_vector(3, 0.5, 0.005), [0.5**-0.005, 0.5**0.995, 0.5**1.995]
    )
    np.testing.assert_allclose(precision_vector(2, 10.0, 1.0), [0.1, 1.0])
    # NumPy integers are integers (a K from an array or a study's params).
    np.testing.assert_allclose(precision_vector(np.int64(2), 10.0, 1.0), [0.1, 1.0])


def test_decode_samples_inverts_the_encoding():
    K, B, k0 = 3, 2.0, 0.0
    integers = np.array([[0, 5, 7], [3, 1, 6]])  # alpha of 3 points, then alpha_hat
    bits = ((integers[:, :, None] >> np.arange(K)) & 1).reshape(1, -1)
    alpha, alpha_hat = decode_samples(bits, 3, K, B, k0)
    np.testing.assert_allclose(alpha, [[0, 5, 7]])
    np.testing.assert_allclose(alpha_hat, [[3, 1, 6]])

    with pytest.raises(ValueError, match="columns"):
        decode_samples(np.zeros((2, 17)), 3, K, B, k0)


def test_invalid_inputs_are_rejected():
    with pytest.raises(ValueError, match="K must be an integer >= 1, got 0"):
        qubo_matrix(np.zeros((2, 1)), np.zeros(2), K=0)
    with pytest.raises(ValueError, match="K must be an integer"):
        qubo_matrix(np.zeros((2, 1)), np.zeros(2), K=True)
    with pytest.raises(ValueError, match="K must be an integer"):
        qubo_matrix(np.zeros((2, 1)), np.zeros(2), K=2.0)
    with pytest.raises(ValueError, match="B must be"):
        qubo_matrix(np.zeros((2, 1)), np.zeros(2), B=-1.0)
    with pytest.raises(ValueError, match="B must be"):
        qubo_matrix(np.zeros((2, 1)), np.zeros(2), B=0.0)
    with pytest.raises(ValueError, match="one row per target"):
        qubo_matrix(np.zeros((3, 1)), np.zeros(2))


def test_build_at_the_pruners_scale_matches_the_dual_objective():
    # 200 curves is the pruner's default max_train_curves. The build's speed is a benchmark
    # (README, "Q-SVR: QUBO build and annealing time"), never a timed test; here the
    # vectorised blocks must still give the dual's energy at that size.
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(200, 5))
    y = rng.uniform(size=200)
    params = PARAMS[0]
    Q = qubo_matrix(X, y, **params)
    assert Q.shape == (1200, 1200) and not np.tril(Q, -1).any()
    bits = rng.integers(0, 2, size=(2, 1200))
    expected = [_dual_objective(b.tolist(), X.tolist(), y.tolist(), **params) for b in bits]
    np.testing.assert_allclose(np.einsum("si,ij,sj->s", bits, Q, bits), expected, rtol=1e-9)


def test_the_matrix_defaults_are_qsvrs_and_a_column_of_targets_is_read_flat():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(4, 2)), rng.normal(size=4)
    Q = qubo_matrix(X, y)
    assert QSVR().to_bqm(X, y) == bqm_from_matrix(Q)  # K, B, k0, epsilon, xi, gamma, beta
    np.testing.assert_array_equal(qubo_matrix(X, y[:, None]), Q)
