"""Learning-curve features: partial curves (with gaps and NaN) to fixed-length rows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from optuna_qsvr.predictors._base import ModelFormatError, Params

FEATURE_KINDS = ("curve", "diff1", "diff2", "params")


def fill_gaps(curves: np.ndarray) -> np.ndarray:
    """Fill unreported steps (``NaN``) by linear interpolation along each row.

    Leading gaps take the first reported value, trailing gaps the last one. A row with no
    finite value cannot be featurised: callers drop such curves before fitting.
    """
    curves = np.array(curves, dtype=float, ndmin=2)
    if curves.ndim != 2:
        raise ValueError(f"curves must be a 2-D array, got shape {curves.shape}")
    out = curves.copy()
    steps = np.arange(curves.shape[1])
    for row in out:
        ok = np.isfinite(row)
        if not ok.any():
            raise ValueError("a curve has no finite value up to the decision step")
        if not ok.all():
            row[~ok] = np.interp(steps[~ok], steps[ok], row[ok])
    return out


class ParamEncoder:
    """Hyperparameters to numbers: numeric as is (log of strictly positive ranges spanning
    more than two decades), categorical one-hot over the categories seen at fit time.
    """

    def __init__(self) -> None:
        self.columns_: list[tuple[str, str, Any]] = []

    def fit(self, params: Params) -> ParamEncoder:
        names = sorted({k for p in params for k in p})
        columns: list[tuple[str, str, Any]] = []
        for name in names:
            values = [p.get(name) for p in params]
            present = [v for v in values if v is not None]
            if all(_is_number(v) for v in present):
                arr = np.asarray(present, dtype=float)
                log = bool(arr.size and arr.min() > 0 and arr.max() / arr.min() > 100)
                columns.append((name, "log" if log else "num", None))
            else:
                for cat in sorted({str(v) for v in present}):
                    columns.append((name, "cat", cat))
        self.columns_ = columns
        return self

    def transform(self, params: Params) -> np.ndarray:
        out = np.zeros((len(params), len(self.columns_)))
        for j, (name, kind, cat) in enumerate(self.columns_):
            for i, p in enumerate(params):
                v = p.get(name)
                if kind == "cat":
                    out[i, j] = float(v is not None and str(v) == cat)
                elif v is None or not _is_number(v):
                    out[i, j] = np.nan
                else:
                    out[i, j] = math.log(v) if kind == "log" and v > 0 else float(v)
        return out

    def to_dict(self) -> list[list[Any]]:
        return [list(c) for c in self.columns_]

    @classmethod
    def from_dict(cls, data: Any) -> ParamEncoder:
        enc = cls()
        if not isinstance(data, list):
            raise ModelFormatError("param_columns must be a list")
        for col in data:
            if (
                not isinstance(col, list)
                or len(col) != 3
                or not isinstance(col[0], str)
                or col[1] not in ("num", "log", "cat")
                or not (col[2] is None or isinstance(col[2], str))
            ):
                raise ModelFormatError(f"malformed param column {col!r}")
            enc.columns_.append((col[0], col[1], col[2]))
        return enc


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def curve_features(
    curves: np.ndarray,
    params: Params | None = None,
    *,
    kinds: Sequence[str] = ("curve",),
    encoder: ParamEncoder | None = None,
) -> np.ndarray:
    """Turn ``(n, t)`` partial curves into feature rows (Baker et al.'s feature set).

    Args:
        curves: values at steps ``1..t`` of the decision key, ``NaN`` where not reported.
        params: one hyperparameter mapping per row; needed when ``"params"`` is in ``kinds``.
        kinds: any of ``"curve"`` (the reference's features), ``"diff1"``, ``"diff2"`` (first
            and second differences of the curve) and ``"params"``.
        encoder: a fitted :class:`ParamEncoder` for the ``"params"`` block.
    """
    unknown = set(kinds) - set(FEATURE_KINDS)
    if unknown:
        raise ValueError(f"unknown feature kinds {sorted(unknown)}; use {FEATURE_KINDS}")
    filled = fill_gaps(curves)
    blocks = []
    if "curve" in kinds:
        blocks.append(filled)
    if "diff1" in kinds:
        blocks.append(np.diff(filled, n=1, axis=1))
    if "diff2" in kinds:
        blocks.append(np.diff(filled, n=2, axis=1))
    if "params" in kinds:
        if params is None or encoder is None:
            raise ValueError("the 'params' features need params and a fitted ParamEncoder")
        if len(params) != filled.shape[0]:
            raise ValueError(f"{len(params)} params for {filled.shape[0]} curves")
        blocks.append(encoder.transform(params))
    if not blocks:
        raise ValueError("kinds selects no feature")
    return np.hstack(blocks)
