"""One seed of the benchmark's replay, kept as an Optuna study so a script can read its records.

``optuna-qsvr benchmark`` keeps only figures; the diagnostic scripts (``where_lost.py``,
``where_spent.py``, ``regimes.py``) need the trials' records, so they replay the same way
here: the seed's permutation of the table, 150 trials, eta 3, the table's epoch times, in an
in-memory study named as the benchmark names it (the name seeds the bracket assignment).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

import optuna

from optuna_qsvr.benchmark import (
    CurveTable,
    config_sequence,
    epoch_clock,
    make_pruner,
    make_sampler,
    replay_async,
)

N_TRIALS = 150


def replay_study(
    table: CurveTable,
    direction: str,
    seed: int,
    method: str,
    workers: int,
    swift_options: Mapping[str, Any] | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> tuple[optuna.Study, list, list]:
    """The study, the replay's runs (``replay_async``'s trials) and the seed's configurations;
    ``swift_options`` as the benchmark's ``--swift-options``; ``pruner``, when given, replaces
    the method's."""
    sequence = config_sequence(table, seed, N_TRIALS)
    study = optuna.create_study(
        storage=optuna.storages.InMemoryStorage(),
        study_name=f"replay-seed{seed}",  # the benchmark's brackets
        direction=direction,
        sampler=make_sampler("random", seed, table),
        pruner=pruner
        or make_pruner(
            method, max_resource=table.max_step, table=table, swift_options=swift_options
        ),
    )
    result = replay_async(
        study,
        table,
        sequence,
        n_workers=workers,
        clock=epoch_clock(table, "auto", seed),
        n_trials=N_TRIALS,
    )
    return study, result.trials, sequence


def replay_parser(description: str, tables: str) -> argparse.ArgumentParser:
    """The diagnostic scripts' shared options: ``--method``, ``--workers``, ``--seeds``,
    ``--swift-options`` (as the benchmark's) and ``--tables`` (comma-separated, default
    ``tables``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--method", default="swift-svr")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument(
        "--swift-options", type=json.loads, default=None, help="pruner keyword arguments, JSON"
    )
    parser.add_argument("--tables", default=tables)
    return parser
