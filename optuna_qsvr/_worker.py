"""Workers that share one study: storages with heartbeats, a study-wide trial budget,
and riding out a database restart. Any launcher (a shell loop, srun, a batch system,
Kubernetes) starts as many as it likes with the same command line.
"""

from __future__ import annotations

import logging
import random
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from optuna_qsvr._secrets import redact, scrub, url_secrets

if TYPE_CHECKING:
    import optuna

_logger = logging.getLogger("optuna_qsvr.worker")

# States that use up the budget: a trial failed by the heartbeat is retried as a WAITING
# copy, so the failed one is not counted twice.
_BUDGET_STATES = ("COMPLETE", "PRUNED", "RUNNING", "WAITING")


class StorageUnavailableError(RuntimeError):
    """The storage stayed unreachable longer than the worker was told to wait."""


def open_storage(
    url: str, *, heartbeat_interval: int | None = 30, grace_period: int | None = None
) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url``, with heartbeats where the storage supports them.

    ``sqlite:///``, ``postgresql://`` and ``mysql://`` URLs give an RDB storage whose running
    trials beat every ``heartbeat_interval`` seconds; a trial silent for ``grace_period``
    seconds (a worker killed mid-trial) is failed by the next worker to start a trial, and
    its parameters are queued again. ``journal:///path/to/file.log`` gives Optuna's journal
    file storage, which has no heartbeat.
    """
    import optuna

    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        path = url.removeprefix("journal:").removeprefix("//")
        return optuna.storages.JournalStorage(JournalFileBackend(path))
    kwargs: dict[str, Any] = {"engine_kwargs": {"pool_pre_ping": True}}
    if not url.startswith("sqlite"):
        kwargs["engine_kwargs"]["pool_recycle"] = 300
    with warnings.catch_warnings():
        # Heartbeats are the point here; Optuna still flags them as experimental.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for attempt in range(5):
            try:
                return _rdb_storage(url, kwargs, heartbeat_interval, grace_period)
            except Exception as err:
                # Workers started together race to create a new database's schema; the
                # losers find it in place on the next try.
                if attempt == 4 or not _is_storage_error(err):
                    raise
                time.sleep(0.2 + random.random())
    raise AssertionError("unreachable")


def _rdb_storage(
    url: str, kwargs: dict[str, Any], heartbeat_interval: int | None, grace_period: int | None
) -> optuna.storages.RDBStorage:
    import optuna

    if heartbeat_interval:
        kwargs.update(
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period or 4 * heartbeat_interval,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=2
            ),
        )
    return optuna.storages.RDBStorage(url, **kwargs)


def budget_used(study: optuna.study.Study) -> int:
    from optuna.trial import TrialState

    states = tuple(TrialState[s] for s in _BUDGET_STATES)
    return len(study.get_trials(deepcopy=False, states=states))


def run_worker(
    make_study: Callable[[], optuna.study.Study],
    objective: Callable[[optuna.trial.Trial], float],
    *,
    budget: int | None,
    n_trials: int | None = None,
    timeout: float | None = None,
    max_outage: float = 300.0,
    secrets: list[str] | None = None,
) -> optuna.study.Study:
    """Run trials until the study-wide ``budget`` (or this worker's ``n_trials``) is used.

    A storage error (the database restarted, the network dropped) is retried with backoff
    for up to ``max_outage`` seconds; then :class:`StorageUnavailableError` is raised with a
    message free of credentials. Each trial is its own transaction sequence in Optuna: a
    trial interrupted by an outage is left RUNNING and failed by the heartbeat, never
    half-written.
    """
    started = time.monotonic()
    done = 0
    outage_since: float | None = None
    delay = 1.0
    study = None
    while True:
        try:
            if study is None:
                study = make_study()
            if budget is not None and budget_used(study) >= budget:
                return study
            if n_trials is not None and done >= n_trials:
                return study
            if timeout is not None and time.monotonic() - started > timeout:
                return study
            study.optimize(objective, n_trials=1)
            done += 1
            outage_since, delay = None, 1.0
        except Exception as err:
            # Classify by the storage's health, not the exception's type: when the database
            # drops mid-tell, Optuna itself raises an unrelated error (UnboundLocalError).
            if not _is_storage_error(err) and _storage_alive(study, make_study):
                raise
            now = time.monotonic()
            outage_since = outage_since or now
            message = scrub(
                f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
                secrets or (),
            )
            if now - outage_since > max_outage:
                raise StorageUnavailableError(
                    f"storage unreachable for {now - outage_since:.0f} s, giving up: {message}"
                ) from None
            _logger.warning("storage error, retrying in %.0f s: %s", delay, message)
            time.sleep(delay)
            delay = min(delay * 2, 30.0)


def add_worker_arguments(parser: Any) -> None:
    parser.add_argument("--curves", required=True, help="learning-curve table to replay")
    parser.add_argument("--storage", required=True, help="storage URL shared by all workers")
    parser.add_argument("--study-name", required=True)
    parser.add_argument("--direction", choices=("minimize", "maximize"), required=True)
    parser.add_argument("--budget", type=int, required=True, help="trials for the whole study")
    parser.add_argument(
        "--pruner",
        default="swift-svr",
        choices=("swift-svr", "swift-qsvr", "hyperband", "sha", "median", "none"),
    )
    parser.add_argument("--reduction-factor", type=int, default=3)
    parser.add_argument(
        "--annealer",
        default=None,
        choices=("simulated", "exact", "qpu", "hybrid"),
        help="annealer of swift-qsvr (default simulated); qpu/hybrid read Ocean's own config",
    )
    parser.add_argument(
        "--epoch-seconds", type=float, default=0.0, help="sleep per replayed epoch (training)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds this worker's config order")
    parser.add_argument("--heartbeat-interval", type=int, default=30)
    parser.add_argument("--grace-period", type=int, default=None)
    parser.add_argument("--max-outage", type=float, default=300.0)
    parser.add_argument("--log-level", default="INFO")


def run_worker_command(args: Any) -> int:
    """``optuna-qsvr worker``: one worker replaying a learning-curve table into a shared study.

    Each trial takes the configuration its number selects in a seeded order, reports its
    recorded values epoch by epoch (sleeping ``--epoch-seconds`` per epoch to stand in for
    training) and obeys the pruner; the worker stops when the study's budget is used.
    """
    import optuna

    from optuna_qsvr.benchmark import CurveTable, config_sequence, make_objective, make_pruner

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    secrets = url_secrets(args.storage)
    table = CurveTable.load(args.curves)
    order = config_sequence(table, args.seed, len(table))
    storage = open_storage(
        args.storage,
        heartbeat_interval=args.heartbeat_interval or None,
        grace_period=args.grace_period,
    )
    pruner = make_pruner(
        args.pruner,
        max_resource=table.max_step,
        reduction_factor=args.reduction_factor,
        annealer=args.annealer,
    )

    def make_study() -> optuna.study.Study:
        return optuna.create_study(
            storage=storage,
            study_name=args.study_name,
            direction=args.direction,
            load_if_exists=True,
            sampler=optuna.samplers.RandomSampler(seed=args.seed),
            pruner=pruner,
        )

    objective = make_objective(table, order=order, epoch_seconds=args.epoch_seconds)

    try:
        study = run_worker(
            make_study,
            objective,
            budget=args.budget,
            max_outage=args.max_outage,
            secrets=secrets,
        )
    except StorageUnavailableError as err:
        _logger.error("%s (storage %s)", err, redact(args.storage))
        return 3
    _logger.info(
        "worker done: study %r has %d trials in its budget", study.study_name, budget_used(study)
    )
    return 0


def _storage_alive(study: Any, make_study: Callable[[], Any]) -> bool:
    try:
        if study is None:
            make_study()
        else:
            study._storage.get_study_id_from_name(study.study_name)
        return True
    except Exception:
        return False


def _is_storage_error(err: BaseException) -> bool:
    """Whether ``err`` or an exception it was raised from is a database failure."""
    import optuna
    from sqlalchemy import exc as sa_exc

    seen: set[int] = set()
    e: BaseException | None = err
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(
            e, (sa_exc.DBAPIError, sa_exc.InterfaceError, optuna.exceptions.StorageInternalError)
        ):
            return True
        e = e.__cause__ or e.__context__
    return False
