"""A study's Swift-Hyperband records read into plain data: trials, forecasts, fits, epochs.

Everything is read from the study's storage (the records the pruner writes on each trial and
the predictor headers it publishes on the study) through :mod:`optuna_qsvr._records`, so the
report works on any study run with :class:`~optuna_qsvr.SwiftHyperbandPruner`, from any
process, while the study still runs. A malformed record is skipped and counted, never trusted.

Epochs against plain Hyperband. Only part of what plain Hyperband would have spent on the
same trials can be known. A trial pruned on a forecast at step ``t`` of rung ``i`` (the
decision step ``t*``, or the first step reported after it) would, under plain Hyperband,
have trained to ``r_i`` at least, since every trial of a rung reaches ``r_i`` before
successive halving judges it. So ``sum(r_i - t)`` over the forecast-pruned trials is a
lower bound on the epochs Swift saved on those trials, and ``spent + sum(r_i - t)`` a lower
bound on what plain Hyperband would have spent on them and on the others as they ran.
It is not the whole counterfactual: such a trial might have been promoted past ``r_i``
(more saved), and its value at ``r_i`` would have entered the rung's successive-halving
ranks, which could have stopped or promoted other trials differently (either way). A
different run, and a sampler that learned from different values, is not estimated at all.
Every other decision (full trainings, kept trials, trials without a forecast and every
successive-halving decision at ``r_i``) trains exactly as plain Hyperband would.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from optuna.study import StudyDirection
from optuna.trial import TrialState

from optuna_qsvr import _records

if TYPE_CHECKING:
    import optuna


def trial_records(study: optuna.study.Study) -> list[dict[str, Any]]:
    """One plain record per trial: number, state, bracket, epochs, value and Swift's records.

    Args:
        study: a study run with :class:`~optuna_qsvr.SwiftHyperbandPruner`.

    Returns:
        Per trial in number order: ``number``, ``state`` (name), ``bracket`` (``None`` if the
        pruner never saw a step), ``epochs`` (``last_step``, 0 if none), ``value``,
        ``decisions`` and ``promotions`` (rung index to the pruner's validated record),
        ``malformed`` (attribute name to what is wrong with it), ``intermediate_values`` and
        ``regime`` (the forecast mode's regime record, ``None`` without one).
    """
    out = []
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.WAITING:
            continue
        records = _records.read_trial(t.system_attrs)
        out.append(
            {
                "number": t.number,
                "state": t.state.name,
                "bracket": _records.bracket_of_trial(t.user_attrs),
                "epochs": int(t.last_step) if t.last_step is not None else 0,
                "value": t.value if t.state == TrialState.COMPLETE else None,
                "decisions": records.decisions,
                "promotions": records.promotions,
                "malformed": records.malformed,
                "intermediate_values": dict(t.intermediate_values),
                "regime": _records.regime_of_trial(t.system_attrs),
            }
        )
    return out


def observed_at(intermediate_values: dict[int, float], step: int) -> float | None:
    """The value reported at ``step``, or at the first step after it (the pruner's rule).

    Args:
        intermediate_values: a trial's reported values by step.
        step: the step whose value is wanted.
    """
    if step in intermediate_values:
        return float(intermediate_values[step])
    later = [s for s in intermediate_values if s > step]
    return float(intermediate_values[min(later)]) if later else None


def forecast_pairs(trials: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per predictor key, the forecasts whose trial went on to the forecast's target step.

    These are the kept trials (and any pruned trial that reported past its decision): the
    only ones whose forecast can be checked against what happened.

    Args:
        trials: the output of :func:`trial_records`.

    Returns:
        Key to a list of ``{number, bracket, rung, forecast, observed, threshold,
        decision}``, in trial order; keys by target, then decision step.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for t in trials:
        for rung, d in t["decisions"].items():
            parsed = _records.parse_predictor_key(d["key"])
            if d["forecast"] is None or parsed is None or not math.isfinite(d["forecast"]):
                continue
            observed = observed_at(t["intermediate_values"], parsed[0])
            if observed is None or not math.isfinite(observed):
                continue
            out.setdefault(d["key"], []).append(
                {
                    "number": t["number"],
                    "bracket": t["bracket"],
                    "rung": rung,
                    "forecast": float(d["forecast"]),
                    "observed": observed,
                    "threshold": d["threshold"],
                    "decision": d["decision"],
                }
            )
    return dict(sorted(out.items(), key=lambda kv: _records.key_order(kv[0])))


def best_so_far(study: optuna.study.Study, trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cumulative epochs and best value after each trial, in trial order.

    ``hyperband_epochs`` adds the known lower bound of what plain Hyperband would have spent
    (see the module docstring) so both curves can be drawn against the same best values.

    Args:
        study: the study ``trials`` were read from (for its direction).
        trials: the output of :func:`trial_records`.
    """
    better = min if study.direction == StudyDirection.MINIMIZE else max
    best: float | None = None
    spent = bound = 0
    out = []
    for t in trials:
        spent += t["epochs"]
        bound += t["epochs"] + _known_saving(t)
        if t["value"] is not None and math.isfinite(t["value"]):
            best = t["value"] if best is None else better(best, t["value"])
        out.append(
            {"number": t["number"], "epochs": spent, "hyperband_epochs": bound, "best": best}
        )
    return out


def fit_records(study: optuna.study.Study) -> list[dict[str, Any]]:
    """One record per published predictor: its header, with ``key``, ``predictor`` and
    ``seconds`` in front.

    Args:
        study: a study run with :class:`~optuna_qsvr.SwiftHyperbandPruner`.

    Returns:
        By target, then decision step: ``key``, ``predictor`` (the header's ``kind``),
        ``seconds`` (its ``fit_seconds``) and every field of the header (``version``,
        ``n_train``, ``annealer``, ``cv_rmse``, ...). A header that is not a mapping is left
        out; the pruner replaces it with a new version on its next fit.
    """
    attrs = study._storage.get_study_system_attrs(study._study_id)
    headers = _records.model_headers(attrs)
    return [
        {"key": key, "predictor": h.get("kind"), "seconds": h.get("fit_seconds"), **h}
        for key, h in sorted(headers.items(), key=lambda kv: _records.key_order(kv[0]))
        if isinstance(h, dict)
    ]


def build_report(study: optuna.study.Study) -> dict[str, Any]:
    """The report's data: plain dicts and lists, ready for tables, JSON or plots.

    Args:
        study: a study run with :class:`~optuna_qsvr.SwiftHyperbandPruner`.

    Returns:
        ``study``, ``direction``, ``states`` (count per trial state), ``best_value``,
        ``epochs`` (``spent``, ``forecast_pruned``, ``known_saving``,
        ``hyperband_at_least``), ``brackets`` and ``rungs`` (counts of each decision),
        ``fits`` (one row per published predictor, with the error of its checked
        forecasts), ``forecasts`` (see :func:`forecast_pairs`), ``progress`` (see
        :func:`best_so_far`) and ``malformed`` (``{number, name, error}`` per record that
        was skipped).
    """
    trials = trial_records(study)
    single = len(study.directions) == 1
    states: dict[str, int] = {}
    brackets: dict[int | None, dict[str, Any]] = {}
    rungs: dict[tuple[int | None, int], dict[str, Any]] = {}
    decided: dict[str, dict[str, int]] = {}
    for t in trials:
        states[t["state"]] = states.get(t["state"], 0) + 1
        b = brackets.setdefault(
            t["bracket"],
            {
                "bracket": t["bracket"],
                "trials": 0,
                "complete": 0,
                "pruned": 0,
                "epochs": 0,
                "known_saving": 0,
            },
        )
        b["trials"] += 1
        b["complete"] += t["state"] == "COMPLETE"
        b["pruned"] += t["state"] == "PRUNED"
        b["epochs"] += t["epochs"]
        b["known_saving"] += _known_saving(t)
        for index, record in (*t["decisions"].items(), *t["promotions"].items()):
            row = rungs.setdefault(
                (t["bracket"], index),
                {
                    "bracket": t["bracket"],
                    "rung": index,
                    "budget": record.get("budget"),
                    "decision_step": None,
                    **dict.fromkeys(_records.DECISIONS + _records.PROMOTIONS, 0),
                },
            )
            row[record["decision"]] += 1
        for index, d in t["decisions"].items():
            rungs[(t["bracket"], index)]["decision_step"] = d.get("decision_step")
            if d["forecast"] is not None:
                n = decided.setdefault(d["key"], {"forecasts": 0, "pruned": 0})
                n["forecasts"] += 1
                n["pruned"] += d["decision"] == "pruned"

    forecasts = forecast_pairs(trials)
    fits = []
    for f in fit_records(study):
        errors = [p["forecast"] - p["observed"] for p in forecasts.get(f["key"], [])]
        fits.append(
            {
                "key": f["key"],
                "kind": f.get("kind"),
                "annealer": f.get("annealer"),
                "version": f.get("version"),
                "n_train": f.get("n_train"),
                "fit_seconds": f.get("fit_seconds"),
                "cv_rmse": f.get("cv_rmse"),
                **decided.get(f["key"], {"forecasts": 0, "pruned": 0}),
                "checked": len(errors),
                "observed_rmse": (
                    math.sqrt(sum(e * e for e in errors) / len(errors)) if errors else None
                ),
            }
        )

    spent = sum(t["epochs"] for t in trials)
    saving = sum(_known_saving(t) for t in trials)
    return {
        "study": study.study_name,
        "direction": study.directions[0].name.lower() if single else "multi-objective",
        "states": dict(sorted(states.items())),
        "best_value": study.best_value if single and states.get("COMPLETE") else None,
        "epochs": {
            "spent": spent,
            "forecast_pruned": sum(
                d["decision"] == "pruned" for t in trials for d in t["decisions"].values()
            ),
            "known_saving": saving,
            "hyperband_at_least": spent + saving,
        },
        "regimes": _regimes(trials),
        "brackets": [brackets[k] for k in sorted(brackets, key=_none_last)],
        "rungs": [rungs[k] for k in sorted(rungs, key=lambda k: (*_none_last(k[0]), k[1]))],
        "fits": fits,
        "forecasts": forecasts,
        "progress": best_so_far(study, trials) if single else [],
        "malformed": [
            {"number": t["number"], "name": name, "error": error}
            for t in trials
            for name, error in sorted(t["malformed"].items())
        ],
    }


def _regimes(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """How many trials ran in each regime, and the rank persistence the latest trial to start
    measured (``None`` if none was measured yet)."""
    records = [t["regime"] for t in trials if t["regime"] is not None]
    measured = [r for r in records if r["persistence"] is not None]
    return {
        "forecast": sum(r["regime"] == "forecast" for r in records),
        "hyperband": sum(r["regime"] == "hyperband" for r in records),
        "persistence": measured[-1]["persistence"] if measured else None,
        "threshold": records[-1]["threshold"] if records else None,
    }


def _known_saving(trial: dict[str, Any]) -> int:
    """``r_i - t`` for a trial pruned on a forecast (see the module docstring), else 0."""
    for d in trial["decisions"].values():
        budget = d.get("budget")
        if d["decision"] == "pruned" and isinstance(budget, int) and not isinstance(budget, bool):
            return max(budget - trial["epochs"], 0)
    return 0


def _none_last(bracket: int | None) -> tuple[bool, int]:
    # Trials the pruner never saw have no bracket: list them after the brackets.
    return bracket is None, bracket or 0
