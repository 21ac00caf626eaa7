"""Compare pruners by replaying recorded learning curves through real Optuna studies.

A :class:`CurveTable` holds the curves of past runs (three recorded tables ship with the
package: :func:`bundled_tables`). A replayed trial reports its configuration's recorded
values epoch by epoch and obeys the study's pruner, so no model is trained:
:func:`replay_async` runs a configuration sequence on simulated asynchronous workers in
virtual time, and :func:`make_objective` is the same replay for
:meth:`optuna.study.Study.optimize`, in one process or in many workers sharing a storage.

:func:`run_benchmark` replays the same seeded sequences under every method of
:data:`METHODS`:

* ``none``: no pruning, every trial runs to the table's last step.
* ``median``, ``sha``, ``hyperband``: Optuna's pruners with ``min_resource=1``,
  ``max_resource`` the table's last step and the chosen reduction factor.
* ``swift-svr``, ``swift-qsvr``: :class:`optuna_qsvr.SwiftHyperbandPruner` with the classical
  or the quantum-annealed predictor.
* ``oracle``: :class:`OraclePruner`, which knows every final value and runs only the trials
  that improve on the trials before them: the fewest epochs that keep no-pruning's
  best-so-far value at every point of the run.

From the command line: ``optuna-qsvr benchmark --curves FILE --direction minimize``.

Example:

    .. code::

        import rich

        from optuna_qsvr.benchmark import CurveTable, bundled_table, render_table, run_benchmark

        table = CurveTable.load(bundled_table("cnn_digits"))
        results = run_benchmark(
            table, ["none", "hyperband"], range(3), direction="maximize", progress=False
        )
        rich.print(render_table(results, table, "maximize"))
"""

from __future__ import annotations

from optuna_qsvr.benchmark._methods import (
    METHODS,
    BenchmarkError,
    OraclePruner,
    check_methods,
    make_pruner,
)
from optuna_qsvr.benchmark._replay import (
    ReplayResult,
    TrialRecord,
    enqueue_config,
    make_objective,
    replay_async,
)
from optuna_qsvr.benchmark._run import config_sequence, run_benchmark, run_one
from optuna_qsvr.benchmark._summary import (
    median_trajectory,
    plot,
    render_table,
    summarize,
    to_json,
)
from optuna_qsvr.benchmark._table import (
    CurveTable,
    CurveTableError,
    bundled_table,
    bundled_tables,
)

__all__ = [
    "METHODS",
    "BenchmarkError",
    "CurveTable",
    "CurveTableError",
    "OraclePruner",
    "ReplayResult",
    "TrialRecord",
    "bundled_table",
    "bundled_tables",
    "check_methods",
    "config_sequence",
    "enqueue_config",
    "make_objective",
    "make_pruner",
    "median_trajectory",
    "plot",
    "render_table",
    "replay_async",
    "run_benchmark",
    "run_one",
    "summarize",
    "to_json",
]
