from __future__ import annotations

import optuna
import pytest

from optuna_qsvr.benchmark import (
    METHODS,
    OPTION_SETS,
    BenchmarkError,
    EarlyDiscardingPruner,
    check_methods,
    make_pruner,
    method_names,
)


def _swift_available() -> bool:
    try:
        check_methods(["swift-svr"])
    except BenchmarkError:
        return False
    return True


needs_swift = pytest.mark.skipif(not _swift_available(), reason="no SwiftHyperbandPruner")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("percentile", optuna.pruners.PercentilePruner),
        ("patient", optuna.pruners.PatientPruner),
        ("i-epoch-1", EarlyDiscardingPruner),
        ("i-epoch-3", EarlyDiscardingPruner),
        ("i-epoch-12", EarlyDiscardingPruner),
    ],
)
def test_new_methods_by_name(name: str, expected: type) -> None:
    pruner = make_pruner(name, max_resource=9)
    assert type(pruner) is expected
    if expected is EarlyDiscardingPruner:
        assert pruner.epochs == int(name.rsplit("-", 1)[1])


def test_percentile_and_patient_settings() -> None:
    percentile = make_pruner("percentile", max_resource=9, min_resource=2)
    assert percentile._percentile == 25.0 and percentile._n_warmup_steps == 2
    patient = make_pruner("patient", max_resource=9)
    assert patient._patience == 3
    assert isinstance(patient._wrapped_pruner, optuna.pruners.MedianPruner)


def test_method_names_list_the_option_sets() -> None:
    names = method_names({"mine": {}})
    assert names[: len(METHODS)] == list(METHODS)
    assert {"swift:paper", "swift:reference", "swift:p33", "swift:mine"} <= set(names)


@pytest.mark.parametrize(
    ("methods", "match"),
    [
        (["none", "asha"], "'asha'"),
        (["swift:nope"], "'swift:nope'"),
        (["i-epoch-0"], "'i-epoch-0'"),
        (["none", "none"], "given twice: none"),
        ([], "no method"),
    ],
)
def test_check_methods_rejects(methods: list[str], match: str) -> None:
    with pytest.raises(BenchmarkError, match=match):
        check_methods(methods)


@needs_swift
@pytest.mark.parametrize("name", sorted(OPTION_SETS))
def test_named_option_sets_build(name: str) -> None:
    from optuna_qsvr import SwiftHyperbandPruner

    pruner = make_pruner(f"swift:{name}", max_resource=27)
    assert isinstance(pruner, SwiftHyperbandPruner)
    for option, value in OPTION_SETS[name].items():
        # A pruner without modes has only the paper's rule, and no mode option.
        got = getattr(pruner._options, option, "paper" if option == "mode" else None)
        assert got == (tuple(value) if isinstance(value, list) else value)


@needs_swift
def test_user_option_sets_and_their_errors() -> None:
    sets = {"qsvr-50": {"max_train_curves": 50, "predictor": "qsvr"}, "bad": {"nope": 1}}
    pruner = make_pruner("swift:qsvr-50", max_resource=27, option_sets=sets)
    assert pruner._options.max_train_curves == 50
    assert pruner._options.predictor == "qsvr"
    with pytest.raises(BenchmarkError, match=r"method swift:bad: .*nope"):
        make_pruner("swift:bad", max_resource=27, option_sets=sets)
