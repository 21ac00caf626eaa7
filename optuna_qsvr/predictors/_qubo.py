"""The QUBO of the epsilon-SVR dual with fixed-point binary encoded dual variables.

Every dual variable is a ``K``-bit number ``alpha_n = sum_k B**(k - k0) * a_{n,k}``. The
variables are ordered ``a_{0,0}, ..., a_{0,K-1}, a_{1,0}, ..., a_{N-1,K-1}`` followed by the
``alpha_hat`` bits in the same order, ``2 * K * N`` binary variables in all.
"""

from __future__ import annotations

import dimod
import numpy as np
from sklearn.metrics.pairwise import rbf_kernel

from optuna_qsvr._validation import check_int

__all__ = [
    "bqm_from_matrix",
    "decode_samples",
    "precision_vector",
    "qubo_matrix",
]


def _check_encoding(K: int, B: float) -> None:
    check_int("K", K, 1)
    if not np.isfinite(B) or B <= 0:
        raise ValueError(f"B must be a finite number > 0, got {B!r}")


def precision_vector(K: int, B: float, k0: float) -> np.ndarray:
    """Return the place values ``p_k = B**(k - k0)`` of the ``K`` bits of one dual variable.

    Args:
        K:
            Number of bits per dual variable.
        B:
            Base of the encoding.
        k0:
            Offset of the exponents.

    Returns:
        A float array of shape ``(K,)``.
    """
    _check_encoding(K, B)
    return float(B) ** (np.arange(K, dtype=float) - float(k0))


def qubo_matrix(
    X: np.ndarray,
    y: np.ndarray,
    *,
    K: int = 3,
    B: float = 0.5,
    k0: float = 0.005,
    epsilon: float = 0.02,
    xi: float = 0.01,
    gamma: float = 0.1,
    beta: float = 0.0,
) -> np.ndarray:
    """Build the upper-triangular QUBO matrix of the epsilon-SVR dual.

    With ``p = precision_vector(K, B, k0)``, ``P = kron(I_N, p)``, the RBF Gram matrix ``G`` and
    ``W = G / 2 + xi * ones((N, N))``, the symmetric QUBO is
    ``[[P^T W P, -P^T W P], [-P^T W P, P^T W P]] + diag(P^T (epsilon - y), P^T (epsilon + y))``
    plus ``beta`` times the coupling of ``alpha_n`` with ``alpha_hat_n``; it is then folded into
    upper-triangular form so that ``bits @ Q @ bits`` is the energy of a bit vector.

    Args:
        X:
            Training inputs of shape ``(N, d)``.
        y:
            Training targets of shape ``(N,)``.
        K:
            Bits per dual variable.
        B:
            Base of the encoding.
        k0:
            Exponent offset of the encoding.
        epsilon:
            Half-width of the insensitive tube.
        xi:
            Penalty weight of the equality constraint ``sum(alpha - alpha_hat) = 0``.
        gamma:
            RBF kernel coefficient.
        beta:
            Penalty weight on ``alpha_n * alpha_hat_n`` (``0`` in the reference).

    Returns:
        A float array of shape ``(2 * K * N, 2 * K * N)``, zero below the diagonal.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float).reshape(-1)
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise ValueError(
            f"X must be 2-D with one row per target, got X of shape {X.shape} and "
            f"{y.shape[0]} targets"
        )
    p = precision_vector(K, B, k0)
    n = X.shape[0]
    kn = K * n

    W = 0.5 * rbf_kernel(X, gamma=gamma) + xi
    # P^T W P == kron(W, p p^T) for P = kron(I_N, p).
    block = np.kron(W, np.outer(p, p))

    Q = np.empty((2 * kn, 2 * kn))
    # The lower-left block is folded onto the upper-right one (doubling it); the symmetric
    # diagonal blocks keep their diagonal and double their strict upper triangle.
    diag_block = np.triu(block, 1)
    diag_block *= 2.0
    idx = np.arange(kn)
    diag_block[idx, idx] = block[idx, idx]
    Q[:kn, :kn] = diag_block
    Q[kn:, kn:] = diag_block
    Q[:kn, kn:] = -2.0 * block
    Q[kn:, :kn] = 0.0
    if beta:
        Q[:kn, kn:] += beta * np.kron(np.eye(n), np.outer(p, p))

    linear_alpha = np.kron(epsilon - y, p)
    linear_alpha_hat = np.kron(epsilon + y, p)
    Q[idx, idx] += linear_alpha
    Q[idx + kn, idx + kn] += linear_alpha_hat
    return Q


def bqm_from_matrix(Q: np.ndarray) -> dimod.BinaryQuadraticModel:
    """Wrap an upper-triangular QUBO matrix into a binary BQM without a Python loop.

    Args:
        Q:
            Square QUBO matrix (upper-triangular as :func:`qubo_matrix` returns it).

    Returns:
        A binary BQM with variables ``0 .. len(Q) - 1``.
    """
    return dimod.BinaryQuadraticModel(Q, "BINARY")


def decode_samples(
    bits: np.ndarray, n_points: int, K: int, B: float, k0: float
) -> tuple[np.ndarray, np.ndarray]:
    """Turn bit vectors into the dual variables they encode.

    Args:
        bits:
            Array of shape ``(S, 2 * K * n_points)`` (or one vector) in the order of
            :func:`qubo_matrix`.
        n_points:
            Number of training points ``N``.
        K:
            Bits per dual variable.
        B:
            Base of the encoding.
        k0:
            Exponent offset of the encoding.

    Returns:
        ``(alpha, alpha_hat)``, two float arrays of shape ``(S, N)``.
    """
    p = precision_vector(K, B, k0)
    bits = np.atleast_2d(np.asarray(bits))
    if bits.shape[1] != 2 * K * n_points:
        raise ValueError(
            f"bits must have 2 * K * n_points = {2 * K * n_points} columns, got {bits.shape[1]}"
        )
    values = bits.reshape(bits.shape[0], 2, n_points, K).astype(float) @ p
    return values[:, 0, :], values[:, 1, :]
