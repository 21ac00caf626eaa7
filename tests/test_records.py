"""The record format (`_records`): every record round-trips, every malformed one is rejected.

Properties (Hypothesis) over generated records: a well-formed decision, promotion or model
record survives encoding (JSON, and a real SQLite storage) and decoding unchanged; any one
field made wrong is rejected with :class:`RecordFormatError` (or :class:`ModelFormatError` for
models), never trusted.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math

import optuna
import pytest
from hypothesis import given
from hypothesis import strategies as st

from optuna_qsvr import _records
from optuna_qsvr.exceptions import ModelFormatError, RecordFormatError
from tests._hypothesis import props

FAST = props(60)
STORAGE = props(12)

ints = st.integers(min_value=0, max_value=10**6)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
text = st.text(max_size=300)


@st.composite
def decision_records(draw) -> dict:
    target, t_star = draw(ints), draw(ints)
    record = _records.new_decision(
        bracket=draw(ints),
        rung=draw(st.integers(0, 50)),
        budget=draw(ints),
        decision_step=t_star,
        step=draw(ints),
        key=_records.predictor_key(target, t_star),
    )
    decision = draw(st.sampled_from(_records.DECISIONS))
    record["decision"] = decision
    if decision in ("kept", "pruned"):
        record.update(forecast=draw(finite), threshold=draw(finite))
    record["reason"] = draw(text)
    if draw(st.booleans()):
        record["p_beat"] = draw(st.floats(0.0, 1.0))
    if draw(st.booleans()):
        del record["v"]  # a version 0.1 record: same fields, no version
    return record


@st.composite
def promotion_records(draw) -> dict:
    of = draw(st.integers(1, 10**4))
    value = draw(st.none() | finite)
    record = _records.new_promotion(
        rung=draw(st.integers(0, 50)),
        budget=draw(ints),
        step=draw(ints),
        value=value,
        promoted=draw(st.booleans()),
        rank=draw(st.integers(1, of)),
        of=of,
    )
    return record


def _json(value):
    return json.loads(json.dumps(value))


# -- names ---------------------------------------------------------------------------------
@FAST
@given(ints, ints)
def test_predictor_key_round_trips(target, step) -> None:
    key = _records.predictor_key(target, step)
    assert _records.parse_predictor_key(key) == (target, step)
    assert _records.key_order(key) == (target, step, key)


@FAST
@given(st.one_of(text, st.integers(), st.none(), st.lists(st.integers())))
def test_anything_else_is_not_a_predictor_key(value) -> None:
    if isinstance(value, str) and _records._KEY.match(value):
        return
    assert _records.parse_predictor_key(value) is None


def test_key_order_sorts_by_target_then_step_and_unknown_last() -> None:
    keys = ["r27_t18", "r9_t6", "lease", "r27_t5", "r9_t5", "r100_t1"]
    assert sorted(keys, key=_records.key_order) == [
        "r9_t5",
        "r9_t6",
        "r27_t5",
        "r27_t18",
        "r100_t1",
        "lease",
    ]
    for bad in ("r9_t", "x9_t5", "r9_t5x", "r-1_t5", " r9_t5", "r9t5"):
        assert _records.parse_predictor_key(bad) is None, bad


def test_attribute_names_are_the_documented_ones() -> None:
    assert _records.decision_attr(2) == "swift:decision:2"
    assert _records.promotion_attr(2) == "swift:promotion:2"
    assert _records.decision_text_attr(2) == "swift:rung2"
    assert _records.promotion_text_attr(2) == "swift:rung2:promotion"
    assert _records.lock_name("r9_t5", 3) == "r9_t5:v3"
    assert _records.lock_attr(_records.lock_name("r9_t5", 3)) == "swift:lock:r9_t5:v3"
    assert _records.model_attr("r9_t5") == "swift:model:r9_t5"
    assert _records.chunk_attr("r9_t5", 2, 7) == "swift:model:r9_t5:v2:7"


# -- per-trial records ---------------------------------------------------------------------
@FAST
@given(decision_records())
def test_decision_record_round_trips_through_json(record) -> None:
    stored = _json(record)
    assert _records.validate_decision(stored) == record
    attrs = {_records.decision_attr(record["rung"]): stored, "other": 1}
    assert _records.decision_of(attrs, record["rung"]) == record
    assert _records.read_trial(attrs).decisions == {record["rung"]: record}
    assert _records.decisions(attrs) == {record["rung"]: record}


@FAST
@given(promotion_records())
def test_promotion_record_round_trips_through_json(record) -> None:
    stored = _json(record)
    assert _records.validate_promotion(stored) == record
    got = _records.read_trial({_records.promotion_attr(record["rung"]): stored})
    assert got.promotions == {record["rung"]: record} and not got.malformed
    assert record["decision"] == ("promoted" if record["decision"] == "promoted" else "stopped")


@STORAGE
@given(decision=decision_records(), promotion=promotion_records())
def test_records_round_trip_through_a_real_storage(tmp_path_factory, decision, promotion) -> None:
    url = f"sqlite:///{tmp_path_factory.mktemp('records') / 'records.db'}"
    study = optuna.create_study(storage=url)
    trial = study.ask()
    name = _records.write_decision(study._storage, trial._trial_id, decision)
    assert name == _records.decision_attr(decision["rung"])
    _records.write_promotion(study._storage, trial._trial_id, promotion)
    frozen = optuna.load_study(storage=url, study_name=study.study_name).trials[0]
    records = _records.read_trial(frozen.system_attrs)
    assert records.decisions == {decision["rung"]: decision}
    assert records.promotions == {promotion["rung"]: promotion}
    assert records.names == {name, _records.promotion_attr(promotion["rung"])}
    line = frozen.user_attrs[_records.decision_text_attr(decision["rung"])]
    assert line == _records.decision_text(decision)
    stop_line = frozen.user_attrs.get(_records.promotion_text_attr(promotion["rung"]))
    if promotion["decision"] == "stopped":
        assert stop_line == _records.promotion_text(promotion)
    else:
        assert stop_line is None


def _wrong_values(field: str) -> list:
    """Values a field of that name must never hold."""
    if field in ("rung", "step", "rank", "of"):
        return [None, "3", 3.0, True, [3], {"a": 1}]
    if field in ("forecast", "threshold", "value"):
        return ["0.5", True, False, [0.5], {"x": 1}]
    if field == "key":
        return [None, 9, 1.5, ["r9_t5"]]
    if field == "decision":
        return [None, "keep", "KEPT", 1, "promoted", "full "]
    if field == "v":
        return [0, 2, "1", None, _records.RECORD_VERSION + 1]
    raise AssertionError(field)


DECISION_FIELDS = ["rung", "step", "forecast", "threshold", "key", "decision", "v"]
PROMOTION_FIELDS = ["rung", "rank", "of", "value", "decision", "v"]


@props(40)
@given(decision_records(), st.sampled_from(DECISION_FIELDS), st.data())
def test_a_decision_record_with_one_wrong_field_is_rejected(record, field, data) -> None:
    bad = copy.deepcopy(record)
    bad[field] = data.draw(st.sampled_from(_wrong_values(field)))
    if field == "decision" and bad["decision"] in _records.DECISIONS:
        return
    with pytest.raises(RecordFormatError, match=field if field != "v" else "version"):
        _records.validate_decision(bad)
    attrs = {_records.decision_attr(record["rung"]): bad}
    got = _records.read_trial(attrs)
    assert got.decisions == {} and set(got.malformed) == set(attrs)
    # A malformed record still marks its decision as taken.
    assert got.names == set(attrs)
    assert _records.decision_of(attrs, record["rung"]) is None


@props(40)
@given(promotion_records(), st.sampled_from(PROMOTION_FIELDS), st.data())
def test_a_promotion_record_with_one_wrong_field_is_rejected(record, field, data) -> None:
    bad = copy.deepcopy(record)
    wrong = _wrong_values(field) if field != "decision" else [None, "kept", "full", 1]
    bad[field] = data.draw(st.sampled_from(wrong))
    with pytest.raises(RecordFormatError, match=field if field != "v" else "version"):
        _records.validate_promotion(bad)
    got = _records.read_trial({_records.promotion_attr(record["rung"]): bad})
    assert got.promotions == {} and len(got.malformed) == 1


@FAST
@given(decision_records(), st.sampled_from(["rung", "step", "key", "decision"]))
def test_a_decision_record_missing_a_required_field_is_rejected(record, field) -> None:
    del record[field]
    with pytest.raises(RecordFormatError, match=field):
        _records.validate_decision(record)


@pytest.mark.parametrize("value", [None, "kept", 3, 1.5, ["decision"], True])
def test_a_record_that_is_not_a_mapping_is_rejected(value) -> None:
    with pytest.raises(RecordFormatError, match="not a mapping"):
        _records.validate_decision(value)
    with pytest.raises(RecordFormatError, match="not a mapping"):
        _records.validate_promotion(value)


def test_read_trial_skips_foreign_keys_and_names_bad_rung_indices() -> None:
    good = _records.new_decision(bracket=0, rung=1, budget=9, decision_step=5, step=5, key="k")
    good.update(decision="full", reason="quota")
    attrs = {
        "swift:decision:1": good,
        "swift:decision:0": dict(good, rung=0),
        "swift:decision:x": good,
        "swift:decision:-1": good,
        "swift:decision:": good,
        "swift:promotion:a": {},
        "swift:bracket": 2,
        "swift:lock:k:v1": {"owner": "x"},
        "decision:1": good,
        "fixed_params": {"x": 1},
    }
    got = _records.read_trial(attrs)
    assert list(got.decisions) == [0, 1]  # sorted by rung
    assert set(got.malformed) == {
        "swift:decision:x",
        "swift:decision:-1",
        "swift:decision:",
        "swift:promotion:a",
    }
    assert all("rung index" in why for why in got.malformed.values())
    assert got.names == {"swift:decision:0", "swift:decision:1", *got.malformed}


def test_promotions_are_sorted_by_rung() -> None:
    attrs = {
        _records.promotion_attr(i): _records.new_promotion(
            rung=i, budget=3**i, step=3**i, value=1.0, promoted=True, rank=1, of=2
        )
        for i in (3, 0, 2)
    }
    assert list(_records.read_trial(attrs).promotions) == [0, 2, 3]


@pytest.mark.parametrize(
    ("value", "expected"), [(2, 2), (0, 0), (True, None), ("2", None), (2.0, None), (None, None)]
)
def test_bracket_of_trial(value, expected) -> None:
    attrs = {} if value is None else {_records.BRACKET_ATTR: value}
    assert _records.bracket_of_trial(attrs) == expected


def test_dashboard_lines() -> None:
    record = _records.new_decision(bracket=1, rung=0, budget=9, decision_step=5, step=6, key="k")
    record.update(decision="pruned", forecast=0.123456, threshold=0.1, reason="why")
    assert _records.decision_text(record) == "pruned at 6 (k): forecast 0.1235 vs threshold 0.1"
    no_forecast = dict(record, decision="no-forecast", forecast=None, reason="no predictor")
    assert _records.decision_text(no_forecast) == "no-forecast at 6 (k): no predictor"
    assert _records.decision_text(dict(no_forecast, reason="")) == "no-forecast at 6 (k)"
    long = dict(no_forecast, reason="x" * 1000)
    assert len(_records.decision_text(long)) == 200
    stop = _records.new_promotion(
        rung=1, budget=9, step=9, value=0.5, promoted=False, rank=4, of=9
    )
    assert stop["decision"] == "stopped" and stop["v"] == _records.RECORD_VERSION
    assert _records.promotion_text(stop) == "stopped at 9: rank 4 of 9 (ASHA)"


def test_a_decision_without_a_forecast_is_written_with_its_dashboard_line() -> None:
    # In memory, so that the fast mutation selection runs it (the SQLite round trip is slower).
    study = optuna.create_study()
    trial = study.ask()
    record = _records.new_decision(bracket=1, rung=2, budget=9, decision_step=5, step=6, key="k")
    assert set(record) == {
        "v",
        "bracket",
        "rung",
        "budget",
        "decision_step",
        "step",
        "key",
        "forecast",
        "threshold",
    }
    record.update(decision="no-forecast", reason="no predictor yet")
    name = _records.write_decision(study._storage, trial._trial_id, record)
    frozen = study._storage.get_trial(trial._trial_id)
    assert name == "swift:decision:2"
    got = _records.read_trial(frozen.system_attrs).decisions[2]
    assert got == record and got["forecast"] is None and got["threshold"] is None
    lines = {k: v for k, v in frozen.user_attrs.items() if k.startswith(_records.PREFIX)}
    assert lines == {"swift:rung2": "no-forecast at 6 (k): no predictor yet"}


def test_writers_validate_before_writing() -> None:
    study = optuna.create_study()
    trial = study.ask()
    bad = _records.new_decision(bracket=0, rung=0, budget=9, decision_step=5, step=5, key="k")
    with pytest.raises(RecordFormatError):
        _records.write_decision(study._storage, trial._trial_id, bad)  # no decision yet
    with pytest.raises(RecordFormatError):
        _records.write_promotion(study._storage, trial._trial_id, {"decision": "stopped"})
    frozen = study._storage.get_trial(trial._trial_id)
    assert not any(k.startswith(_records.PREFIX) for k in frozen.system_attrs)
    assert not any(k.startswith(_records.PREFIX) for k in frozen.user_attrs)


# -- model records -------------------------------------------------------------------------
model_texts = st.one_of(
    st.text(max_size=200),
    st.builds(
        lambda unit, n: unit * n,
        st.text(alphabet='ab"\\é\n', min_size=1, max_size=7),
        st.integers(1, 3 * _records.CHUNK_CHARS),
    ),
)


@STORAGE
@given(text=model_texts, version=st.integers(1, 5))
def test_model_record_round_trips_in_chunks(tmp_path_factory, text, version) -> None:
    storage = optuna.storages.RDBStorage(
        f"sqlite:///{tmp_path_factory.mktemp('models') / 'models.db'}"
    )
    study = optuna.create_study(storage=storage)
    meta = {"version": version, "kind": "svr", "n_train": 7, "fit_seconds": 0.5, "extra": [1]}
    header = _records.publish_model(storage, study._study_id, "r9_t5", text, meta)
    n_chunks = max(1, math.ceil(len(text) / _records.CHUNK_CHARS))
    assert header["chunks"] == n_chunks and header["version"] == version
    assert header["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    attrs = storage.get_study_system_attrs(study._study_id)
    assert _records.read_model(attrs, "r9_t5") == (header, text)
    assert _records.read_model(attrs, "r27_t18") is None
    assert _records.model_headers(attrs) == {"r9_t5": header}
    assert _records.next_model_version(attrs, "r9_t5") == version + 1
    assert _records.next_model_version(attrs, "r27_t18") == 1
    chunks = [attrs[_records.chunk_attr("r9_t5", version, i)] for i in range(n_chunks)]
    assert all(len(c) <= _records.CHUNK_CHARS for c in chunks) and "".join(chunks) == text


def test_a_published_header_carries_the_record_version() -> None:
    study = optuna.create_study()
    meta = {"kind": "svr", "n_train": 3, "fit_seconds": 0.1, "v": 0}  # meta cannot override
    header = _records.publish_model(study._storage, study._study_id, "k", "{}", meta)
    stored = study._storage.get_study_system_attrs(study._study_id)[_records.model_attr("k")]
    assert header["v"] == stored["v"] == _records.RECORD_VERSION


def _published(text: str = "abc" * 20_001) -> tuple[dict, dict]:
    study = optuna.create_study()
    meta = {"kind": "svr", "n_train": 3, "fit_seconds": 0.1}
    header = _records.publish_model(study._storage, study._study_id, "k", text, meta)
    return header, study._storage.get_study_system_attrs(study._study_id)


def test_a_tampered_or_missing_chunk_is_rejected() -> None:
    header, attrs = _published()
    assert header["chunks"] == 3 and header["version"] == 1
    tampered = dict(attrs, **{_records.chunk_attr("k", 1, 1): "x" * _records.CHUNK_CHARS})
    with pytest.raises(ModelFormatError, match="sha256"):
        _records.read_model(tampered, "k")
    missing = {k: v for k, v in attrs.items() if k != _records.chunk_attr("k", 1, 2)}
    with pytest.raises(ModelFormatError, match="chunk 2 missing"):
        _records.read_model(missing, "k")
    not_text = dict(attrs, **{_records.chunk_attr("k", 1, 0): 5})
    with pytest.raises(ModelFormatError, match="chunk 0"):
        _records.read_model(not_text, "k")
    # A header claiming fewer chunks reads a prefix whose hash does not match.
    short = dict(attrs, **{_records.model_attr("k"): dict(header, chunks=2)})
    with pytest.raises(ModelFormatError, match="sha256"):
        _records.read_model(short, "k")


HEADER_FIELDS = ["chunks", "sha256", "version", "kind", "n_train", "fit_seconds"]


@FAST
@given(
    st.sampled_from(HEADER_FIELDS),
    st.sampled_from([None, "1", True, False, [1], {"a": 1}, 1.5]),
)
def test_a_header_with_one_wrong_field_is_rejected(field, value) -> None:
    header, attrs = _published("abc")
    if field in ("sha256", "kind") and isinstance(value, str):
        return  # any text is a well-typed hash or kind; a wrong hash is checked on read
    if field == "fit_seconds" and value == 1.5:
        return
    bad = dict(attrs, **{_records.model_attr("k"): dict(header, **{field: value})})
    with pytest.raises(ModelFormatError, match=field):
        _records.read_model(bad, "k")
    del bad[_records.model_attr("k")][field]
    with pytest.raises(ModelFormatError, match=field):
        _records.read_model(bad, "k")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"chunks": 0}, "out of range"),
        ({"chunks": _records.MAX_CHUNKS + 1}, "out of range"),
        ({"version": 0}, "out of range"),
        ({"fit_seconds": math.inf}, "not finite"),
        ({"fit_seconds": math.nan}, "not finite"),
        ({"v": _records.RECORD_VERSION + 1}, "record version"),
        ({"v": None}, "record version"),
        ({"settings": "abc"}, "settings is a str"),
        ({"settings": [1]}, "settings is a list"),
    ],
)
def test_a_header_out_of_range_is_rejected(change, match) -> None:
    header, _attrs = _published("abc")
    with pytest.raises(ModelFormatError, match=match):
        _records.validate_header(dict(header, **change), "k")
    # Limits themselves are accepted.
    _records.validate_header(dict(header, chunks=1, version=1, fit_seconds=0), "k")
    _records.validate_header(dict(header, chunks=_records.MAX_CHUNKS), "k")
    _records.validate_header(dict(header, settings={"alpha": 0.1}), "k")
    with pytest.raises(ModelFormatError, match="not a mapping"):
        _records.validate_header([header], "k")


def test_a_model_of_several_chunks_reads_back_whole_and_errors_name_the_key() -> None:
    header, attrs = _published()  # 60,003 characters: three chunks
    assert header["chunks"] == 3 and _records.read_model(attrs, "k") == (header, "abc" * 20_001)
    bad = dict(attrs, **{_records.model_attr("k"): dict(header, chunks=0)})
    with pytest.raises(ModelFormatError, match=r"^model header for k: chunk count"):
        _records.read_model(bad, "k")


def test_a_header_of_version_0_1_has_no_record_version_and_loads() -> None:
    header, attrs = _published("abc")
    old = {k: v for k, v in header.items() if k != "v"}
    _records.validate_header(old, "k")
    assert _records.read_model(dict(attrs, **{_records.model_attr("k"): old}), "k") == (old, "abc")


def test_a_bad_meta_is_not_published_and_the_error_names_the_key() -> None:
    study = optuna.create_study()
    meta = {"kind": "svr", "n_train": 3, "fit_seconds": math.inf}
    with pytest.raises(ModelFormatError, match=r"^model header for r9_t5: fit_seconds is not"):
        _records.publish_model(study._storage, study._study_id, "r9_t5", "{}", meta)
    attrs = study._storage.get_study_system_attrs(study._study_id)
    assert _records.read_model(attrs, "r9_t5") is None  # no header: nothing published


def test_a_model_of_too_many_chunks_is_not_published(monkeypatch) -> None:
    monkeypatch.setattr(_records, "MAX_CHUNKS", 2)
    study = optuna.create_study()
    meta = {"kind": "svr", "n_train": 3, "fit_seconds": 0.1}
    text = "x" * (2 * _records.CHUNK_CHARS)
    header = _records.publish_model(study._storage, study._study_id, "k", text, meta)
    assert header["chunks"] == 2
    with pytest.raises(ModelFormatError, match="too large"):
        _records.publish_model(study._storage, study._study_id, "k2", text + "x", meta)
    assert _records.model_attr("k2") not in study._storage.get_study_system_attrs(study._study_id)


def test_an_empty_model_text_is_one_empty_chunk() -> None:
    header, attrs = _published("")
    assert header["chunks"] == 1 and attrs[_records.chunk_attr("k", 1, 0)] == ""
    assert _records.read_model(attrs, "k") == (header, "")


def test_read_trial_reads_past_foreign_attributes_and_names_the_bad_record() -> None:
    """Optuna's own system attributes may come first: every Swift record is still read, and a
    malformed one is reported under its attribute name."""
    good = _records.new_decision(bracket=0, rung=1, budget=9, decision_step=5, step=5, key="k")
    good.update(decision="kept", reason="")
    promotion = _records.new_promotion(
        rung=0, budget=3, step=3, value=0.5, promoted=True, rank=1, of=3
    )
    attrs = {
        "fixed_params": {"x": 1},
        "swift:decision:1": good,
        "constraints": [0.0],
        "swift:promotion:0": promotion,
        "swift:decision:2": "garbage",
    }
    got = _records.read_trial(attrs)
    assert got.decisions == {1: good} and got.promotions == {0: promotion}
    assert got.malformed == {"swift:decision:2": "swift:decision:2 is str, not a mapping"}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ({"version": 3}, 4),
        ({"version": 1}, 2),
        ({"version": 0}, 1),
        ({"version": -2}, 1),
        ({"version": 10**6 - 1}, 10**6),
        ({"version": 10**6}, 1),
        ({"version": True}, 1),
        ({"version": "3"}, 1),
        ({}, 1),
        ("not a header", 1),
    ],
)
def test_next_model_version_survives_malformed_headers(header, expected) -> None:
    assert _records.next_model_version({_records.model_attr("k"): header}, "k") == expected


def test_model_headers_exclude_chunks_and_other_attributes() -> None:
    attrs = {
        "swift:model:r9_t5": {"version": 1},
        "swift:model:r9_t5:v1:0": "chunk",
        "swift:model:r27_t18": "malformed, still listed",
        "swift:lock:r9_t5:v1": {"owner": "x"},
        "other": 1,
    }
    assert _records.model_headers(attrs) == {
        "r9_t5": {"version": 1},
        "r27_t18": "malformed, still listed",
    }


@pytest.mark.parametrize("field", DECISION_FIELDS)
def test_each_decision_field_is_checked(field) -> None:
    """Every wrong value of every field, not a sample: the properties above draw a few."""
    record = _records.new_decision(bracket=0, rung=1, budget=9, decision_step=5, step=5, key="k")
    record.update(decision="kept", forecast=0.1, threshold=0.2, reason="")
    assert _records.validate_decision(dict(record)) == record
    for value in _wrong_values(field):
        if field == "decision" and value in _records.DECISIONS:
            continue
        with pytest.raises(RecordFormatError, match=field if field != "v" else "version"):
            _records.validate_decision(dict(record, **{field: value}))
    if field in ("forecast", "threshold"):
        assert _records.validate_decision(dict(record, **{field: None}))[field] is None
        assert _records.validate_decision(dict(record, **{field: 3}))[field] == 3


@pytest.mark.parametrize("field", PROMOTION_FIELDS)
def test_each_promotion_field_is_checked(field) -> None:
    record = _records.new_promotion(
        rung=1, budget=9, step=9, value=0.5, promoted=True, rank=1, of=3
    )
    assert _records.validate_promotion(dict(record)) == record
    wrong = _wrong_values(field) if field != "decision" else [None, "kept", "full", 1]
    for value in wrong:
        with pytest.raises(RecordFormatError, match=field if field != "v" else "version"):
            _records.validate_promotion(dict(record, **{field: value}))


def test_errors_name_the_record() -> None:
    with pytest.raises(RecordFormatError, match=r"^decision record is NoneType, not a mapping"):
        _records.validate_decision(None)
    with pytest.raises(RecordFormatError, match=r"^promotion record is list, not a mapping"):
        _records.validate_promotion([])
    with pytest.raises(RecordFormatError, match=r"^decision record: unsupported record version 7"):
        _records.validate_decision({"v": 7})
    with pytest.raises(RecordFormatError, match=r"^promotion record: unsupported record version"):
        _records.validate_promotion({"v": 7})
    with pytest.raises(RecordFormatError, match=r"^swift:decision:3: unsupported"):
        _records.validate_decision({"v": 7}, "swift:decision:3")


def test_only_a_stop_gets_a_dashboard_line() -> None:
    study = optuna.create_study()
    trial = study.ask()
    for rung, promoted in ((0, True), (1, False)):
        record = _records.new_promotion(
            rung=rung, budget=3**rung, step=3**rung, value=0.5, promoted=promoted, rank=2, of=3
        )
        assert _records.write_promotion(study._storage, trial._trial_id, record) == (
            _records.promotion_attr(rung)
        )
    frozen = study._storage.get_trial(trial._trial_id)
    assert _records.read_trial(frozen.system_attrs).promotions[1]["decision"] == "stopped"
    lines = {k: v for k, v in frozen.user_attrs.items() if k.startswith(_records.PREFIX)}
    assert lines == {"swift:rung1:promotion": "stopped at 3: rank 2 of 3 (ASHA)"}


# -- regime records ------------------------------------------------------------------------
_REGIME = {
    "v": 1,
    "regime": "forecast",
    "persistence": 0.62,
    "pairs": 40,
    "threshold": 0.5,
    "bracket": 2,
}


def test_a_regime_record_round_trips_and_an_unmeasured_persistence_is_null() -> None:
    assert _records.new_regime("forecast", 0.62, 40, 0.5, 2) == _REGIME
    unmeasured = _records.new_regime("hyperband", math.nan, 0, 0.5, 0)
    assert unmeasured == {
        "v": 1,
        "regime": "hyperband",
        "persistence": None,
        "pairs": 0,
        "threshold": 0.5,
        "bracket": 0,
    }
    # Older records: without a bracket, and without a version.
    without_bracket = {k: v for k, v in _REGIME.items() if k not in ("bracket", "v")}
    without_version = {k: v for k, v in _REGIME.items() if k != "v"}
    for record in (_REGIME, unmeasured, without_bracket, without_version):
        stored = json.loads(json.dumps(record))
        assert _records.regime_of_trial({_records.REGIME_ATTR: stored}) == record
    # At the limits of a correlation.
    for rho in (-1.0, 1.0):
        at = _records.new_regime("forecast", rho, 3, 0.0, 1)
        assert _records.regime_of_trial({_records.REGIME_ATTR: at}) == at


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("regime", "fast"),
        ("regime", None),
        ("persistence", 1.01),
        ("persistence", -1.01),
        ("persistence", "0.6"),
        ("persistence", True),
        ("pairs", -1),
        ("pairs", 4.0),
        ("pairs", None),
        ("threshold", "0.5"),
        ("threshold", None),
        ("bracket", -1),
        ("bracket", "2"),
        ("bracket", 2.0),
        ("bracket", None),
        ("bracket", True),
        ("v", _records.RECORD_VERSION + 1),
        ("v", None),
    ],
)
def test_a_regime_record_with_one_wrong_field_is_malformed(field, value) -> None:
    assert _records.regime_of_trial({_records.REGIME_ATTR: {**_REGIME, field: value}}) is None
    missing = {k: v for k, v in _REGIME.items() if k != field}
    # A missing persistence reads as not measured, a missing bracket or version as an older
    # record's.
    if field not in ("persistence", "bracket", "v"):
        assert _records.regime_of_trial({_records.REGIME_ATTR: missing}) is None


@pytest.mark.parametrize("value", [None, "forecast", ["forecast"], 0.5])
def test_a_regime_record_that_is_not_a_mapping_is_malformed(value) -> None:
    assert _records.regime_of_trial({_records.REGIME_ATTR: value}) is None
    assert _records.regime_of_trial({"swift:other": _REGIME}) is None


def test_regime_lines() -> None:
    assert _records.regime_text(_REGIME) == "forecast: rank persistence 0.620 >= 0.5 (40 pairs)"
    at = {**_REGIME, "persistence": 0.5}
    assert _records.regime_text(at) == "forecast: rank persistence 0.500 >= 0.5 (40 pairs)"
    below = {**_REGIME, "regime": "hyperband", "persistence": 0.499}
    assert _records.regime_text(below) == "hyperband: rank persistence 0.499 < 0.5 (40 pairs)"
    unmeasured = _records.new_regime("hyperband", math.nan, 0, 0.5, 0)
    assert _records.regime_text(unmeasured) == "hyperband: rank persistence not measured yet"
