"""How well the hyperparameters, the early epochs, or both predict a configuration's final value.

    python benchmarks/predictability.py

For each recorded table: the Spearman correlation between the final value and its 5-fold
cross-validated forecast by an RBF NuSVR (the SVR predictor's estimator) on the hyperparameters,
on the first k epochs (k = 1, 3, 9, 27), and on both; after the first slash, the raw value at
epoch k; after the second (k >= 3), the curve's own parametric extrapolation to the last epoch,
which needs no other curve: the mean of the least-squares fits of three of Domhan et al.'s
(2015) families (pow3, exp3, log-linear) to epochs 1..k, or the value at k where no fit
converges. A screening of the idea, not Domhan et al.'s method (an MCMC ensemble of 11
families with priors).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.stats import spearmanr
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.svm import NuSVR

from optuna_qsvr.benchmark import CurveTable, bundled_table
from optuna_qsvr.predictors import ParamEncoder

TABLES = ("cnn_digits", "lstm_babi17", "mlpf_delphes_sim")


def _pow3(x: np.ndarray, c: float, a: float, alpha: float) -> np.ndarray:
    return c - a * x ** (-alpha)


def _exp3(x: np.ndarray, c: float, a: float, b: float) -> np.ndarray:
    return c - a * np.exp(-b * x)


def extrapolate(values: np.ndarray, last_step: int) -> float:
    """The mean of the families' least-squares fits to ``values`` (epochs ``1..k``) at
    ``last_step``; the value at ``k`` when none converges."""
    x = np.arange(1, len(values) + 1, dtype=float)
    rise = values[-1] - values[0] or 1e-3
    slope, intercept = np.polyfit(np.log(x), values, 1)
    forecasts = [intercept + slope * np.log(last_step)]
    # Bounded exponents keep a fit on three points from shooting off to infinity.
    for family, start, bounds in (
        (_pow3, [values[-1], rise, 0.5], ([-np.inf, -np.inf, 0.01], [np.inf, np.inf, 3.0])),
        (_exp3, [values[-1], rise, 0.5], ([-np.inf, -np.inf, 1e-3], [np.inf, np.inf, 3.0])),
    ):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)
                p, _ = curve_fit(family, x, values, p0=start, bounds=bounds, maxfev=2000)
        except (RuntimeError, ValueError):
            continue
        forecasts.append(float(family(np.array([float(last_step)]), *p)[0]))
    finite = [f for f in forecasts if np.isfinite(f)]
    return float(np.mean(finite)) if finite else float(values[-1])


def main() -> None:
    for name in TABLES:
        table = CurveTable.load(bundled_table(name))
        curves = np.array([table.values(c) for c in table.configs])
        final = curves[:, -1]
        params = [table.params(c) for c in table.configs]
        encoded = np.nan_to_num(ParamEncoder().fit(params).transform(params), nan=0.5)
        folds = KFold(5, shuffle=True, random_state=0)
        model = make_pipeline(MinMaxScaler(), NuSVR(gamma="scale"))
        row = []
        for label, X, raw in [
            ("params", encoded, None),
            *[(f"epochs 1..{k}", curves[:, :k], curves[:, k - 1]) for k in (1, 3, 9, 27)],
            *[(f"both 1..{k}", np.hstack([curves[:, :k], encoded]), None) for k in (1, 3, 9)],
        ]:
            forecast = cross_val_predict(model, X, final, cv=folds)
            text = f"{label}: {spearmanr(forecast, final)[0]:.2f}"
            if raw is not None:
                text += f"/{spearmanr(raw, final)[0]:.2f}"
                k = int(label.rsplit(".", 1)[1])
                if k >= 3:
                    extrapolated = [extrapolate(c[:k], curves.shape[1]) for c in curves]
                    text += f"/{spearmanr(extrapolated, final)[0]:.2f}"
            row.append(text)
        print(f"{name}: " + ", ".join(row))


if __name__ == "__main__":
    main()
