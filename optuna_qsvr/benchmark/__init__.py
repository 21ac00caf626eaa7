"""Compare pruners by replaying recorded learning curves through real Optuna studies.

A :class:`CurveTable` holds the curves of past runs (recorded tables ship with the package:
:func:`bundled_tables`; :func:`load_lcbench` reads LCBench's JSON files). A replayed trial
reports its configuration's recorded values epoch by epoch and obeys the study's pruner, so no
model is trained: :func:`replay_async` runs configurations on simulated asynchronous workers in
virtual time, each configuration at its own epoch time (:func:`epoch_clock`), and
:func:`make_objective` is the same replay for :meth:`optuna.study.Study.optimize`, in one
process or in many workers sharing a storage.

:func:`run_benchmark` replays the same seeded sequences under every method (see
:func:`make_pruner`):

* ``none``: no pruning, every trial runs to the table's last step.
* ``median``, ``percentile`` (25th), ``patient`` (median, patience 3), ``sha``,
  ``hyperband``: Optuna's pruners with ``min_resource=1``, ``max_resource`` the table's last
  step and the chosen reduction factor.
* ``i-epoch-1``, ``i-epoch-3``: :class:`EarlyDiscardingPruner`, every trial trains ``i``
  epochs and continues only if it is the best seen at epoch ``i``.
* ``swift-svr``, ``swift-qsvr``: :class:`optuna_qsvr.SwiftHyperbandPruner` with the library's
  defaults and the classical or the quantum-annealed predictor; ``swift:NAME`` with a named
  option set of :data:`OPTION_SETS` (``paper``, ``reference``, ``p33``).
* ``oracle``: :class:`OraclePruner`, which knows every final value and runs only the trials
  that improve on the trials before them.

:func:`method_figures` turns the runs into means and medians with bootstrap intervals,
:func:`dominated_by` says which method is beaten on compute and result together, and
:func:`render_table`, :func:`to_json`, :func:`plot_anytime` and :func:`plot_pareto` show them.

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

from optuna_qsvr.benchmark._discarding import EarlyDiscardingPruner
from optuna_qsvr.benchmark._lcbench import load_lcbench
from optuna_qsvr.benchmark._methods import (
    METHODS,
    OPTION_SETS,
    BenchmarkError,
    OraclePruner,
    check_methods,
    make_pruner,
    method_argument,
    method_names,
)
from optuna_qsvr.benchmark._plots import (
    median_trajectory,
    pareto_axes,
    plot_anytime,
    plot_pareto,
)
from optuna_qsvr.benchmark._replay import (
    EPOCH_TIME_MODES,
    ReplayResult,
    TrialRecord,
    enqueue_config,
    epoch_clock,
    make_objective,
    replay_async,
)
from optuna_qsvr.benchmark._run import (
    config_sequence,
    fewer_trials_regret,
    run_benchmark,
    run_one,
    top_threshold,
)
from optuna_qsvr.benchmark._samplers import SAMPLERS, TableSampler, make_sampler
from optuna_qsvr.benchmark._stats import (
    Estimate,
    bootstrap,
    dominated_by,
    dominates,
    method_figures,
)
from optuna_qsvr.benchmark._summary import (
    from_json,
    render_table,
    summarize,
    time_breakdown,
    to_json,
    worst_regret,
)
from optuna_qsvr.benchmark._table import (
    CurveTable,
    CurveTableError,
    bundled_table,
    bundled_tables,
    infer_direction,
)

# The anytime plot's name before the Pareto plot existed.
plot = plot_anytime

__all__ = [
    "EPOCH_TIME_MODES",
    "METHODS",
    "OPTION_SETS",
    "SAMPLERS",
    "BenchmarkError",
    "CurveTable",
    "CurveTableError",
    "EarlyDiscardingPruner",
    "Estimate",
    "OraclePruner",
    "ReplayResult",
    "TableSampler",
    "TrialRecord",
    "bootstrap",
    "bundled_table",
    "bundled_tables",
    "check_methods",
    "config_sequence",
    "dominated_by",
    "dominates",
    "enqueue_config",
    "epoch_clock",
    "fewer_trials_regret",
    "from_json",
    "infer_direction",
    "load_lcbench",
    "make_objective",
    "make_pruner",
    "make_sampler",
    "median_trajectory",
    "method_argument",
    "method_figures",
    "method_names",
    "pareto_axes",
    "plot",
    "plot_anytime",
    "plot_pareto",
    "render_table",
    "replay_async",
    "run_benchmark",
    "run_one",
    "summarize",
    "time_breakdown",
    "to_json",
    "top_threshold",
    "worst_regret",
]
