"""The storage record format: every key Swift-Hyperband writes, and how its values are encoded,
decoded and validated. It is the only module that knows key names.

Per trial (Optuna trial attributes):

==========================================  ==========  =======================================
key                                         kind        value
==========================================  ==========  =======================================
``swift:bracket``                           user        the trial's bracket ``s`` (int)
``swift:regime``                            system      how the trial runs: regime record (below)
``swift:regime``                            user        the same as one line of text
``swift:decision:<rung>``                   system      decision record (see below)
``swift:promotion:<rung>``                  system      successive-halving record (see below)
``swift:rung<rung>``                        user        the decision as one line of text
``swift:rung<rung>:promotion``              user        a stop at ``r_i`` as one line of text
==========================================  ==========  =======================================

Per study (Optuna study system attributes):

==========================================  =======================================================
``swift:model:<key>``                       model header: JSON-safe metadata, chunk count, SHA-256
``swift:model:<key>:v<version>:<i>``        chunk ``i`` of the model's JSON text
``swift:lock:<key>:v<version>``             the fit lease of that model version
==========================================  =======================================================

A regime record (forecast mode) says how the trial runs and why: ``{"regime": "forecast" or
"hyperband", "persistence": the study's rank persistence when the trial started (a float in
[-1, 1], or null before it could be measured), "pairs": the trial-pairs it was measured on,
"threshold": the option it was compared with}``; ``swift:bracket`` then follows from it.

A predictor key is ``r<target>_t<decision step>``. Records carry ``"v": RECORD_VERSION``; a record
without it was written by version 0.1 and has the same fields. Readers validate every record:
a malformed one (a string, ``null``, a missing field) is skipped and reported, never trusted.
Nothing executable is stored: every value is JSON.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from optuna_qsvr.exceptions import ModelFormatError, RecordFormatError

if TYPE_CHECKING:
    import optuna

RECORD_VERSION = 1

PREFIX = "swift:"
BRACKET_ATTR = "swift:bracket"
REGIME_ATTR = "swift:regime"
REGIMES = ("forecast", "hyperband")
DECISION_PREFIX = "swift:decision:"
PROMOTION_PREFIX = "swift:promotion:"
MODEL_PREFIX = "swift:model:"
LOCK_PREFIX = "swift:lock:"
# A running trial's heartbeat as a trial attribute (optuna_qsvr._heartbeat), written by every
# worker: the worker's own, not a Swift record, so a re-queued copy of the trial drops it.
HEARTBEAT_ATTR = "optuna_qsvr:heartbeat"

DECISIONS = ("full", "kept", "pruned", "no-forecast")
PROMOTIONS = ("promoted", "stopped")

# One attribute is one Text row (MySQL's TEXT holds 64 KiB) and json.dumps may double a
# chunk's length when it escapes quotes.
CHUNK_CHARS = 30_000
MAX_CHUNKS = 2_000
_HEADER_FIELDS = {
    "chunks": int,
    "sha256": str,
    "version": int,
    "kind": str,
    "n_train": int,
    "fit_seconds": float,
}
_KEY = re.compile(r"^r(\d+)_t(\d+)$")
_TEXT_CHARS = 200


# -- names -------------------------------------------------------------------------------
def predictor_key(target: int, decision_step: int) -> str:
    """The key of the predictor that forecasts step ``target`` from steps ``1..decision_step``."""
    return f"r{target}_t{decision_step}"


def parse_predictor_key(key: Any) -> tuple[int, int] | None:
    """``(target, decision_step)`` of a predictor key, or ``None`` if it is not one."""
    match = _KEY.match(key) if isinstance(key, str) else None
    return (int(match.group(1)), int(match.group(2))) if match else None


def key_order(key: str) -> tuple[int, int, str]:
    """Sort predictor keys by target, then decision step; unknown keys last."""
    parsed = parse_predictor_key(key)
    return (*parsed, key) if parsed else (1 << 62, 1 << 62, key)


def decision_attr(rung: int) -> str:
    return f"{DECISION_PREFIX}{rung}"


def promotion_attr(rung: int) -> str:
    return f"{PROMOTION_PREFIX}{rung}"


def decision_text_attr(rung: int) -> str:
    return f"swift:rung{rung}"


def promotion_text_attr(rung: int) -> str:
    return f"swift:rung{rung}:promotion"


def lock_attr(name: str) -> str:
    return f"{LOCK_PREFIX}{name}"


def lock_name(key: str, version: int) -> str:
    """The fit lease of version ``version`` of predictor ``key``."""
    return f"{key}:v{version}"


# -- per-trial records --------------------------------------------------------------------
def validate_decision(record: Any, name: str = "decision record") -> dict[str, Any]:
    """Return ``record`` if it is a well-formed decision record, else raise.

    Raises:
        RecordFormatError: naming the first field that is wrong.
    """
    if not isinstance(record, dict):
        raise RecordFormatError(f"{name} is {type(record).__name__}, not a mapping")
    _check_version(record, name)
    if record.get("decision") not in DECISIONS:
        raise RecordFormatError(f"{name}: decision {record.get('decision')!r} not in {DECISIONS}")
    for field_name in ("rung", "step"):
        if not _is_int(record.get(field_name)):
            raise RecordFormatError(f"{name}: {field_name} {record.get(field_name)!r} not an int")
    for field_name in ("forecast", "threshold"):
        value = record.get(field_name)
        if value is not None and not _is_number(value):
            raise RecordFormatError(f"{name}: {field_name} {value!r} is not a number")
    if not isinstance(record.get("key"), str):
        raise RecordFormatError(f"{name}: key {record.get('key')!r} is not text")
    return record


def validate_promotion(record: Any, name: str = "promotion record") -> dict[str, Any]:
    """Return ``record`` if it is a well-formed successive-halving record, else raise."""
    if not isinstance(record, dict):
        raise RecordFormatError(f"{name} is {type(record).__name__}, not a mapping")
    _check_version(record, name)
    if record.get("decision") not in PROMOTIONS:
        raise RecordFormatError(f"{name}: decision {record.get('decision')!r} not in {PROMOTIONS}")
    for field_name in ("rung", "rank", "of"):
        if not _is_int(record.get(field_name)):
            raise RecordFormatError(f"{name}: {field_name} {record.get(field_name)!r} not an int")
    value = record.get("value")
    if value is not None and not _is_number(value):
        raise RecordFormatError(f"{name}: value {value!r} is not a number")
    return record


@dataclass
class TrialRecords:
    """A trial's Swift records, validated: rung index to record, and the names that were not."""

    decisions: dict[int, dict[str, Any]] = field(default_factory=dict)
    promotions: dict[int, dict[str, Any]] = field(default_factory=dict)
    malformed: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> set[str]:
        """Attribute names of every record present, well-formed or not: a decision is taken
        once, so a malformed record still marks its decision as taken."""
        return (
            {decision_attr(i) for i in self.decisions}
            | {promotion_attr(i) for i in self.promotions}
            | set(self.malformed)
        )


def read_trial(system_attrs: Mapping[str, Any]) -> TrialRecords:
    """Decode and validate every Swift record of one trial's system attributes."""
    out = TrialRecords()
    for name, value in system_attrs.items():
        if not name.startswith(PREFIX):
            continue
        for prefix, validate, target in (
            (DECISION_PREFIX, validate_decision, out.decisions),
            (PROMOTION_PREFIX, validate_promotion, out.promotions),
        ):
            if not name.startswith(prefix):
                continue
            suffix = name[len(prefix) :]
            try:
                if not suffix.isdigit():
                    raise RecordFormatError(f"{name}: rung index {suffix!r} is not an integer")
                target[int(suffix)] = validate(value, name)
            except RecordFormatError as err:
                out.malformed[name] = str(err)
    out.decisions = dict(sorted(out.decisions.items()))
    out.promotions = dict(sorted(out.promotions.items()))
    return out


def decision_of(system_attrs: Mapping[str, Any], rung: int) -> dict[str, Any] | None:
    """The trial's decision record at ``rung``, or ``None`` if absent or malformed."""
    try:
        return validate_decision(system_attrs.get(decision_attr(rung)))
    except RecordFormatError:
        return None


def decisions(system_attrs: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
    """Every well-formed decision record of a trial, by rung."""
    return read_trial(system_attrs).decisions


def bracket_of_trial(user_attrs: Mapping[str, Any]) -> int | None:
    """The bracket recorded on a trial, or ``None`` if the pruner never saw it."""
    value = user_attrs.get(BRACKET_ATTR)
    return value if _is_int(value) else None


def new_regime(
    regime: str, persistence: float, pairs: int, threshold: float, bracket: int
) -> dict[str, Any]:
    """A regime record; a persistence that could not be measured (``nan``) is stored as null.

    It carries the trial's bracket too: in the trial's own process Optuna hands the pruner a
    copy of the user attributes taken when the trial started, which lacks the ``swift:bracket``
    written later, while the system attributes are read from the storage."""
    return {
        "v": RECORD_VERSION,
        "regime": regime,
        "persistence": persistence if math.isfinite(persistence) else None,
        "pairs": pairs,
        "threshold": threshold,
        "bracket": bracket,
    }


def regime_text(record: Mapping[str, Any]) -> str:
    """A regime record as the dashboard shows it."""
    regime, rho = record["regime"], record["persistence"]
    if rho is None:
        return f"{regime}: rank persistence not measured yet"
    relation = ">=" if rho >= record["threshold"] else "<"
    return (
        f"{regime}: rank persistence {rho:.3f} {relation} {record['threshold']:g} "
        f"({record['pairs']} pairs)"
    )


def regime_of_trial(system_attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The regime record of a trial, or ``None`` if absent or malformed."""
    record = system_attrs.get(REGIME_ATTR)
    if not isinstance(record, Mapping) or record.get("regime") not in REGIMES:
        return None
    # No version: written before regime records carried one, with the same fields.
    if record.get("v", RECORD_VERSION) != RECORD_VERSION:
        return None
    persistence, pairs = record.get("persistence"), record.get("pairs")
    if persistence is not None and not (_is_number(persistence) and -1.0 <= persistence <= 1.0):
        return None
    if not (_is_int(pairs) and pairs >= 0) or not _is_number(record.get("threshold")):
        return None
    # Records written before the bracket was part of them have none.
    if "bracket" in record and not (_is_int(record["bracket"]) and record["bracket"] >= 0):
        return None
    return dict(record)


def new_decision(
    *, bracket: int, rung: int, budget: int, decision_step: int, step: int, key: str
) -> dict[str, Any]:
    """A decision record before its outcome: ``decision`` and ``reason`` are filled later."""
    return {
        "v": RECORD_VERSION,
        "bracket": bracket,
        "rung": rung,
        "budget": budget,
        "decision_step": decision_step,
        "step": step,
        "key": key,
        "forecast": None,
        "threshold": None,
    }


def new_promotion(
    *, rung: int, budget: int, step: int, value: float | None, promoted: bool, rank: int, of: int
) -> dict[str, Any]:
    return {
        "v": RECORD_VERSION,
        "rung": rung,
        "budget": budget,
        "step": step,
        "value": value,
        "decision": "promoted" if promoted else "stopped",
        "rank": rank,
        "of": of,
    }


def decision_text(record: Mapping[str, Any]) -> str:
    """The one line shown in the dashboard for a decision record."""
    text = f"{record['decision']} at {record['step']} ({record['key']})"
    if record.get("forecast") is not None:
        text += f": forecast {record['forecast']:.4g} vs threshold {record['threshold']:.4g}"
    elif record.get("reason"):
        text += f": {record['reason']}"
    return text[:_TEXT_CHARS]


def promotion_text(record: Mapping[str, Any]) -> str:
    return f"stopped at {record['budget']}: rank {record['rank']} of {record['of']} (ASHA)"


def write_decision(
    storage: optuna.storages.BaseStorage, trial_id: int, record: dict[str, Any]
) -> str:
    """Write a decision record and its dashboard line; returns the record's attribute name."""
    validate_decision(record)
    name = decision_attr(record["rung"])
    storage.set_trial_system_attr(trial_id, name, record)
    storage.set_trial_user_attr(
        trial_id, decision_text_attr(record["rung"]), decision_text(record)
    )
    return name


def write_promotion(
    storage: optuna.storages.BaseStorage, trial_id: int, record: dict[str, Any]
) -> str:
    """Write a successive-halving record (and a line for a stop); returns its attribute name."""
    validate_promotion(record)
    name = promotion_attr(record["rung"])
    storage.set_trial_system_attr(trial_id, name, record)
    if record["decision"] == "stopped":
        storage.set_trial_user_attr(
            trial_id, promotion_text_attr(record["rung"]), promotion_text(record)
        )
    return name


# -- model records ------------------------------------------------------------------------
def publish_model(
    storage: optuna.storages.BaseStorage,
    study_id: int,
    key: str,
    text: str,
    meta: dict[str, Any],
) -> dict[str, Any]:
    """Write a fitted model's JSON in chunks, then its header; the header marks it complete."""
    version = int(meta.get("version", 1))
    chunks = [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)] or [""]
    if len(chunks) > MAX_CHUNKS:
        raise ModelFormatError(f"model for {key} too large to publish ({len(text)} characters)")
    for i, chunk in enumerate(chunks):
        storage.set_study_system_attr(study_id, chunk_attr(key, version, i), chunk)
    header = {
        **meta,
        "v": RECORD_VERSION,
        "chunks": len(chunks),
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
        "version": version,
    }
    validate_header(header, key)
    storage.set_study_system_attr(study_id, f"{MODEL_PREFIX}{key}", header)
    return header


def read_model(attrs: Mapping[str, Any], key: str) -> tuple[dict[str, Any], str] | None:
    """The published header and JSON text of ``key``, or ``None`` if none is published.

    Raises:
        ModelFormatError: the record is malformed, incomplete or does not match its hash.
    """
    header = attrs.get(f"{MODEL_PREFIX}{key}")
    if header is None:
        return None
    validate_header(header, key)
    parts = []
    for i in range(header["chunks"]):
        part = attrs.get(chunk_attr(key, header["version"], i))
        if not isinstance(part, str):
            raise ModelFormatError(f"model record for {key}: chunk {i} missing or not text")
        parts.append(part)
    text = "".join(parts)
    if hashlib.sha256(text.encode()).hexdigest() != header["sha256"]:
        raise ModelFormatError(f"model record for {key} does not match its sha256")
    return header, text


def validate_header(header: Any, key: str) -> None:
    """Raise :class:`~optuna_qsvr.predictors.ModelFormatError` unless ``header`` is valid."""
    if not isinstance(header, dict):
        raise ModelFormatError(f"model header for {key} is not a mapping")
    for name, kind in _HEADER_FIELDS.items():
        value = header.get(name)
        ok = isinstance(value, (int, float) if kind is float else kind) and not isinstance(
            value, bool
        )
        if not ok:
            raise ModelFormatError(f"model header for {key}: field {name!r} is {value!r}")
    if not 1 <= header["chunks"] <= MAX_CHUNKS or header["version"] < 1:
        raise ModelFormatError(f"model header for {key}: chunk count or version out of range")
    if not math.isfinite(header["fit_seconds"]):
        raise ModelFormatError(f"model header for {key}: fit_seconds is not finite")
    if header.get("v", RECORD_VERSION) != RECORD_VERSION:
        raise ModelFormatError(f"model header for {key}: record version {header.get('v')!r}")
    # Loading compares the fit's settings with the pruner's, key by key.
    settings = header.get("settings")
    if settings is not None and not isinstance(settings, dict):
        raise ModelFormatError(f"model header for {key}: settings is a {type(settings).__name__}")


def model_headers(attrs: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every published model header by key (chunks excluded), valid or not."""
    out = {}
    for name, value in attrs.items():
        if name.startswith(MODEL_PREFIX) and ":v" not in name[len(MODEL_PREFIX) :]:
            out[name[len(MODEL_PREFIX) :]] = value
    return out


def next_model_version(attrs: Mapping[str, Any], key: str) -> int:
    """The version after the published one, even when its header is malformed."""
    header = attrs.get(f"{MODEL_PREFIX}{key}")
    v = header.get("version") if isinstance(header, dict) else None
    return v + 1 if _is_int(v) and 0 < v < 10**6 else 1


def model_attr(key: str) -> str:
    return f"{MODEL_PREFIX}{key}"


def chunk_attr(key: str, version: int, index: int) -> str:
    """The attribute holding chunk ``index`` of version ``version`` of model ``key``."""
    return f"{MODEL_PREFIX}{key}:v{version}:{index}"


# -- helpers ------------------------------------------------------------------------------
def _check_version(record: dict[str, Any], name: str) -> None:
    if record.get("v", RECORD_VERSION) != RECORD_VERSION:
        raise RecordFormatError(f"{name}: unsupported record version {record.get('v')!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
