"""How well the hyperparameters, the early epochs, or both predict a configuration's final value.

    python benchmarks/predictability.py

For each recorded table: the Spearman correlation between the final value and its 5-fold
cross-validated forecast by an RBF NuSVR (the SVR predictor's estimator) on the hyperparameters,
on the first k epochs (k = 1, 3, 9, 27), and on both; after the slash, the raw value at epoch k.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.svm import NuSVR

from optuna_qsvr.benchmark import CurveTable, bundled_table
from optuna_qsvr.predictors import ParamEncoder

TABLES = ("cnn_digits", "lstm_babi17", "mlpf_delphes_sim")


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
            row.append(text)
        print(f"{name}: " + ", ".join(row))


if __name__ == "__main__":
    main()
