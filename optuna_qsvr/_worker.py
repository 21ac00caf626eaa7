"""Workers that share one study: storages with heartbeats, a study-wide trial budget,
and riding out a database restart. Any launcher (a shell loop, srun, a batch system,
Kubernetes) starts as many as it likes with the same command line.

No trial is left RUNNING. A worker runs its own trial loop rather than ``Study.optimize`` so
that it knows which trial is its own when the storage comes back after an outage: it finishes
that trial if the objective had returned, else fails it and queues its parameters again. A
trial whose worker is gone (killed, or cut off while ``ask`` was creating it, which leaves no
heartbeat row for Optuna's stale-trial check to see) is failed and queued again by any worker
once it has been silent for the grace period; before exiting, a worker waits until every
RUNNING trial has either been seen beating or been failed, so the last one alive settles the
orphans too.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import logging
import math
import os
import random
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optuna_qsvr import _records
from optuna_qsvr._heartbeat import HeartbeatWatch, beat_attribute
from optuna_qsvr._secrets import redact, scrub, scrub_logs, url_secrets

if TYPE_CHECKING:
    import optuna

_logger = logging.getLogger("optuna_qsvr.worker")

# States that use up the budget: a trial failed by the heartbeat is retried as a WAITING
# copy, so the failed one is not counted twice.
_BUDGET_STATES = ("COMPLETE", "PRUNED", "RUNNING", "WAITING")
# How often a failed trial's parameters are queued again (Optuna's retry history).
MAX_RETRY = 2


class StorageUnavailableError(RuntimeError):
    """The storage stayed unreachable longer than the worker was told to wait."""


class _Backoff:
    """Waits between retries of a storage that does not answer, for at most ``limit`` s."""

    def __init__(self, limit: float, secrets: list[str] | None) -> None:
        self._limit = limit
        self._secrets = secrets or []
        self._since: float | None = None
        self._delay = 0.5

    def ok(self) -> None:
        self._since, self._delay = None, 0.5

    def wait(self, err: BaseException) -> None:
        """Sleep before the next try, or raise :class:`StorageUnavailableError` once the
        storage has been unreachable for ``limit`` seconds."""
        now = time.monotonic()
        self._since = self._since or now
        message = scrub(_describe(err), self._secrets)
        left = self._since + self._limit - now
        if left <= 0:
            raise StorageUnavailableError(
                f"storage unreachable for {now - self._since:.0f} s, giving up: {message}"
            ) from None
        # Jitter: workers cut off together should not all come back at the same instant.
        delay = min(self._delay * (0.75 + random.random() / 2), left)
        _logger.warning("storage error, retrying in %.1f s: %s", delay, message)
        time.sleep(delay)
        self._delay = min(self._delay * 2, 30.0)


def _describe(err: BaseException) -> str:
    """One line naming an error: a gRPC call's status and details, else type and message."""
    from optuna_qsvr._proxy import describe_proxy_error

    text = describe_proxy_error(err)
    if text is None:
        first = str(err).splitlines()[0] if str(err) else ""
        text = f"{type(err).__name__}: {first}"
    return text


def open_storage(
    url: str,
    *,
    heartbeat_interval: int | None = 30,
    grace_period: int | None = None,
    max_wait: float = 300.0,
    pool_size: int | None = None,
) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url``, with heartbeats where the storage supports them.

    ``sqlite:///``, ``postgresql://`` and ``mysql://`` URLs give an RDB storage whose running
    trials beat every ``heartbeat_interval`` seconds; a trial silent for ``grace_period``
    seconds (a worker killed mid-trial) is failed by a worker and its parameters are queued
    again (without the pruner's records, which belonged to the failed trial).
    ``journal:///path/to/file.log`` gives Optuna's journal file storage, which has no heartbeat.
    ``grpc://host:port`` gives a client of Optuna's gRPC storage proxy (``optuna-qsvr proxy``),
    whose heartbeat is a trial system attribute (see :class:`optuna_qsvr._proxy.ProxyStorage`).

    A database (or proxy) that does not answer is retried with back-off for up to ``max_wait``
    seconds (workers started before the database is up, or a database restarting).
    ``pool_size`` caps the connections an RDB storage holds (default: SQLAlchemy's 5 + 10).

    Raises:
        StorageUnavailableError: the database did not answer within ``max_wait`` seconds; the
            message holds no password.
        ValueError: ``url`` is not a storage URL (a wrong scheme, a ``grpc://`` URL without a
            host); the message holds no password.
    """
    import optuna

    if url.startswith("grpc:"):
        return _open_proxy(url, heartbeat_interval, grace_period, max_wait)
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        path = url.removeprefix("journal:").removeprefix("//")
        return optuna.storages.JournalStorage(JournalFileBackend(path))
    kwargs: dict[str, Any] = {"engine_kwargs": {"pool_pre_ping": True}}
    if pool_size is not None:
        # A fixed number of connections (the proxy): never more than the pool.
        kwargs["engine_kwargs"].update(pool_size=pool_size, max_overflow=0)
    if not url.startswith("sqlite"):
        kwargs["engine_kwargs"]["pool_recycle"] = 300
        if "connect_timeout" not in url:
            # A host that drops packets would otherwise hang each try for minutes.
            kwargs["engine_kwargs"]["connect_args"] = {"connect_timeout": 10}
    backoff = _Backoff(max_wait, url_secrets(url))
    with warnings.catch_warnings():
        # Heartbeats are the point here; Optuna still flags them as experimental.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        while True:
            try:
                return _rdb_storage(url, dict(kwargs), heartbeat_interval, grace_period)
            except Exception as err:
                # Also the losers of the race to create a new database's schema: they find
                # it in place on the next try.
                if not _is_storage_error(err):
                    _raise_if_bad_url(err, url)
                    raise
                backoff.wait(err)


def _raise_if_bad_url(err: Exception, url: str) -> None:
    """Turn SQLAlchemy's "not a URL" and "no such dialect" errors into one ValueError line."""
    from sqlalchemy import exc as sa_exc

    if isinstance(err, sa_exc.ArgumentError):
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"not a storage URL: {scrub(text, url_secrets(url))}") from None


def _open_proxy(
    url: str, heartbeat_interval: int | None, grace_period: int | None, max_wait: float
) -> optuna.storages.BaseStorage:
    from optuna_qsvr._proxy import ProxyStorage, parse_grpc_url

    host, port = parse_grpc_url(url)
    storage = ProxyStorage(
        host=host, port=port, heartbeat_interval=heartbeat_interval, grace_period=grace_period
    )
    backoff = _Backoff(max_wait, [])
    while True:
        try:
            storage.check(timeout=min(10.0, max_wait))
            return storage
        except Exception as err:
            if not _is_storage_error(err):
                raise
            backoff.wait(err)


def _rdb_storage(
    url: str, kwargs: dict[str, Any], heartbeat_interval: int | None, grace_period: int | None
) -> optuna.storages.RDBStorage:
    from optuna_qsvr._rdb import AtomicStateRDBStorage

    if heartbeat_interval:
        kwargs.update(
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period or 4 * heartbeat_interval,
            heartbeat_stale_trial_callback=requeue_trial,
        )
    # Workers race to start queued trials and to fail silent ones: one must win each.
    return AtomicStateRDBStorage(url, **kwargs)


def requeue_trial(study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Queue a failed trial's parameters again, as Optuna's ``RetryHeartbeatStaleTrialCallback``
    does (at most :data:`MAX_RETRY` times), but without Swift-Hyperband's records: copied, they
    would tell the pruner that the new trial's rungs were already decided."""
    import optuna

    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    if len(history) > MAX_RETRY:
        return

    def own(attrs: dict[str, Any]) -> dict[str, Any]:
        return {
            k: v
            for k, v in attrs.items()
            if not k.startswith(_records.PREFIX) and k != _records.HEARTBEAT_ATTR
        }

    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs=own(trial.user_attrs),
            system_attrs={
                **own(trial.system_attrs),
                "failed_trial": trial.system_attrs.get("failed_trial", trial.number),
                "retry_history": history,
            },
        )
    )


def budget_used(study: optuna.study.Study) -> int:
    from optuna.trial import TrialState

    states = tuple(TrialState[s] for s in _BUDGET_STATES)
    return len(study.get_trials(deepcopy=False, states=states))


@dataclass
class _Current:
    """The trial this worker runs, and its outcome once the objective has returned."""

    trial_id: int | None = None
    outcome: tuple[float | None, Any] | None = None


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
    message free of credentials. When the storage comes back, the trial the outage
    interrupted is finished if the objective had returned, else failed and queued again.
    With heartbeats, trials silent for the grace period are failed and queued again, and once
    the budget is used the worker waits for any trial that has gone silent to be decided.
    """
    started = time.monotonic()
    done = 0
    backoff = _Backoff(max_outage, secrets)
    current = _Current()
    study = None
    while True:
        try:
            if study is None:
                study = make_study()
            if current.trial_id is not None:
                _settle(study, current)
            backoff.ok()
            if n_trials is not None and done >= n_trials:
                return study
            if timeout is not None and time.monotonic() - started > timeout:
                return study
            if budget is not None and not _work_left(study, budget):
                failed, silent = _fail_silent_trials(study)
                if failed:
                    continue  # their queued copies are work left
                if not silent:
                    return study
                # Poll each second: a trial that ends is gone at the next look, one that
                # beats is seen changing within an interval.
                time.sleep(min(_heartbeat_interval(study._storage) or 1, 1))
                continue
            _run_trial(study, objective, current)
            done += 1
        except KeyboardInterrupt:
            if study is not None and current.trial_id is not None:
                with contextlib.suppress(Exception):
                    _settle(study, current)  # another worker may run it
            raise
        except Exception as err:
            # Classify by the storage's health, not the exception's type: a failing database
            # surfaces through Optuna as unrelated errors too.
            if _is_storage_error(err) or not _storage_alive(study, make_study):
                backoff.wait(err)
                continue
            if study is not None and current.trial_id is not None:
                # A bug in the objective: fail its trial as Study.optimize does, then stop.
                _settle(study, current, requeue=False)
            raise


def _work_left(study: optuna.study.Study, budget: int) -> bool:
    from optuna.trial import TrialState

    states = tuple(TrialState[s] for s in _BUDGET_STATES)
    trials = study.get_trials(deepcopy=False, states=states)
    # Queued copies of failed trials are inside the budget but still to be run.
    return len(trials) < budget or any(t.state == TrialState.WAITING for t in trials)


def _run_trial(
    study: optuna.study.Study, objective: Callable[[optuna.trial.Trial], float], current: _Current
) -> None:
    """One trial: ask, run the objective under a heartbeat, tell. An outage leaves ``current``
    set, for :func:`_settle` once the storage is back."""
    import optuna
    from optuna.trial import TrialState

    _fail_silent_trials(study)
    with warnings.catch_warnings():
        # This loop keeps the heartbeat and fails silent trials, as Study.optimize would.
        warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used")
        trial = study.ask()
    current.trial_id, current.outcome = trial._trial_id, None
    try:
        with _Heartbeat(study._storage, trial._trial_id):
            try:
                current.outcome = (objective(trial), TrialState.COMPLETE)
            except optuna.TrialPruned:
                current.outcome = (None, TrialState.PRUNED)
        _tell(study, trial.number, current.outcome)
    except optuna.exceptions.UpdateFinishedTrialError:
        # Its heartbeat went silent for the grace period during an outage, and another
        # worker failed it and queued its parameters again.
        _logger.warning("trial %d was failed by another worker while it ran", trial.number)
    current.trial_id = current.outcome = None


def _tell(study: optuna.study.Study, number: int, outcome: tuple[float | None, Any]) -> None:
    from optuna.trial import TrialState

    value, state = outcome
    # skip_if_finished: another worker may have failed it as silent meanwhile.
    if state == TrialState.COMPLETE:
        study.tell(number, value, skip_if_finished=True)
    else:
        study.tell(number, state=state, skip_if_finished=True)


def _settle(study: optuna.study.Study, current: _Current, *, requeue: bool = True) -> None:
    """Decide the trial an error interrupted: tell its outcome if the objective had returned,
    else fail it (and queue its parameters again after an outage)."""
    import optuna
    from optuna.trial import TrialState

    trial_id, outcome = current.trial_id, current.outcome
    assert trial_id is not None
    trial = study._storage.get_trial(trial_id)
    if trial.state == TrialState.RUNNING:
        if outcome is not None:
            _tell(study, trial.number, outcome)
            _logger.warning("trial %d: recorded its result after a storage error", trial.number)
        else:
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                if study._storage.set_trial_state_values(trial_id, TrialState.FAIL):
                    if requeue:
                        requeue_trial(study, study._storage.get_trial(trial_id))
                    _logger.warning(
                        "trial %d: interrupted by a storage error, failed%s",
                        trial.number,
                        " and queued again" if requeue else "",
                    )
    current.trial_id = current.outcome = None


def _fail_silent_trials(study: optuna.study.Study) -> tuple[int, int]:
    """Fail (and queue again) the study's RUNNING trials silent for the grace period.

    A trial is silent when its last heartbeat, or its start if it never beat (its worker was
    cut off inside ``ask``), is older than two heartbeat intervals: its worker may be gone.
    A trial is also silent until this worker has seen its heartbeat change: one beat, however
    recent, may be the last of a worker that was killed.
    Returns how many were failed here and how many others are silent but still within the
    grace period. Storages without heartbeats have no silent trials.
    """
    import optuna
    from optuna.storages._heartbeat import is_heartbeat_enabled
    from optuna.trial import TrialState

    from optuna_qsvr._proxy import ProxyStorage

    storage = study._storage
    backend = getattr(storage, "_backend", storage)
    if not is_heartbeat_enabled(storage):
        return 0, 0
    if isinstance(backend, optuna.storages.RDBStorage):
        ages = _rdb_silent_ages(backend, study._study_id)
    elif isinstance(backend, ProxyStorage):
        ages = backend.silent_ages(study._study_id)
    else:
        return 0, 0
    interval = float(backend.heartbeat_interval or 0)
    grace = float(backend.grace_period or 2 * interval)
    failed = silent = 0
    for trial_id, age, beating in ages:
        if beating and age <= min(2 * interval, grace):
            continue
        if age <= grace:
            silent += 1
            continue
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            # Several workers may see the same trial: only the one that fails it re-queues it.
            if storage.set_trial_state_values(trial_id, TrialState.FAIL):
                trial = storage.get_trial(trial_id)
                requeue_trial(study, trial)
                _logger.warning(
                    "trial %d: no heartbeat for %.0f s, failed and queued again", trial.number, age
                )
                failed += 1
    return failed, silent


# Per storage, which heartbeats this worker has seen change. Weak keys: a storage dropped
# after an outage takes its entries.
_WATCHES: weakref.WeakKeyDictionary[Any, HeartbeatWatch] = weakref.WeakKeyDictionary()


def _rdb_silent_ages(
    storage: optuna.storages.RDBStorage, study_id: int
) -> list[tuple[int, float, bool]]:
    """``(trial id, seconds silent, whether it was seen beating)`` of every RUNNING trial, as
    :meth:`ProxyStorage.silent_ages` gives them. A trial with a row in Optuna's heartbeat
    table is timed by the database's clock; one whose worker reaches the database through
    the proxy beats only in its attribute, timed as the proxy's workers time it; one with
    neither is timed from its start."""
    rows = _running_trial_beats(storage, study_id)
    watch = _WATCHES.setdefault(storage, HeartbeatWatch())
    watched = watch.observe({tid: (table, attr) for tid, _, table, attr in rows})
    ages = []
    for trial_id, since_start, table, attr in rows:
        silent, beating = watched[trial_id]
        ages.append(
            (trial_id, since_start if table is not None or attr is None else silent, beating)
        )
    return ages


def _running_trial_beats(
    storage: optuna.storages.RDBStorage, study_id: int
) -> list[tuple[int, float, Any, Any]]:
    """``(trial id, seconds since its last heartbeat row or, without one, since its start,
    that row's time, its heartbeat attribute's stored JSON)`` of every RUNNING trial.
    Heartbeat rows are in the database's clock, starts in the workers'."""
    import sqlalchemy
    from optuna.storages._rdb import models
    from optuna.trial import TrialState

    trial, beat = models.TrialModel, models.TrialHeartbeatModel
    attr = models.TrialSystemAttributeModel
    session = storage.scoped_session()
    try:
        db_now = session.execute(sqlalchemy.func.now()).scalar()
        rows = (
            session.query(trial, beat.heartbeat, attr.value_json)
            .outerjoin(beat, beat.trial_id == trial.trial_id)
            .outerjoin(
                attr,
                sqlalchemy.and_(
                    attr.trial_id == trial.trial_id, attr.key == _records.HEARTBEAT_ATTR
                ),
            )
            .filter(trial.study_id == study_id, trial.state == TrialState.RUNNING)
            .all()
        )
        db_now = db_now.replace(tzinfo=None)
        now = datetime.datetime.now()
        beats = []
        for row, heartbeat, attribute in rows:
            # datetime_start is a property in local time whatever the Optuna version stores.
            since = (db_now - heartbeat) if heartbeat else (now - (row.datetime_start or now))
            beats.append((row.trial_id, since.total_seconds(), heartbeat, attribute))
        return beats
    finally:
        session.close()


def _heartbeat_interval(storage: Any) -> int | None:
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return storage.get_heartbeat_interval() if is_heartbeat_enabled(storage) else None


class _Heartbeat:
    """A trial's heartbeat that outlives an outage. Optuna's heartbeat thread ends at its
    first storage error, so a trial that survived a database restart would be failed as
    stale by another worker while it still runs."""

    def __init__(self, storage: Any, trial_id: int) -> None:
        from optuna.storages import RDBStorage

        self._storage = storage
        self._trial_id = trial_id
        self._interval = _heartbeat_interval(storage)
        # The proxy's storage beats in the attribute already.
        self._attribute = isinstance(getattr(storage, "_backend", storage), RDBStorage)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self) -> None:
        if self._interval:
            self._thread.start()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._interval:
            self._thread.join()

    def _beat(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # the trial's own calls report the outage
                self._storage.record_heartbeat(self._trial_id)
                if self._attribute:  # for workers behind the proxy, which cannot see the table
                    beat_attribute(self._storage, self._trial_id)
            if self._stop.wait(self._interval):
                return


def add_worker_arguments(parser: Any) -> None:
    parser.add_argument(
        "--curves",
        required=True,
        help="learning-curve table to replay: a CSV file, or the name of a bundled table "
        "(cnn_digits, mlpf_delphes_sim, ...)",
    )
    parser.add_argument(
        "--storage",
        required=True,
        help="storage URL shared by all workers: sqlite:///, postgresql+psycopg://, "
        "journal:///path, or grpc://HOST:PORT for an optuna-qsvr proxy",
    )
    parser.add_argument("--study-name", required=True)
    parser.add_argument("--direction", choices=("minimize", "maximize"), required=True)
    parser.add_argument(
        "--budget", type=_at_least(1), required=True, help="trials for the whole study"
    )
    parser.add_argument(
        "--pruner",
        default="swift-svr",
        type=_pruner_name,
        help="any method of `optuna-qsvr benchmark` (swift-svr, swift-qsvr, swift:NAME, "
        "hyperband, sha, median, percentile, patient, i-epoch-K, oracle, none); "
        "default swift-svr",
    )
    parser.add_argument("--reduction-factor", type=_at_least(2), default=3)
    parser.add_argument(
        "--annealer",
        default=None,
        choices=("simulated", "exact", "qpu", "hybrid"),
        help="annealer of swift-qsvr (default simulated); qpu/hybrid read Ocean's own config",
    )
    parser.add_argument(
        "--epoch-seconds",
        type=_at_least(0.0, float),
        default=0.0,
        help="sleep per replayed epoch (training)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds this worker's config order")
    parser.add_argument("--heartbeat-interval", type=_at_least(0), default=30, help="0: none")
    parser.add_argument(
        "--grace-period",
        type=_at_least(1),
        default=None,
        help="seconds without a heartbeat before a trial counts as dead; more than the interval",
    )
    parser.add_argument(
        "--max-outage",
        type=_at_least(0.0, float),
        default=300.0,
        metavar="SECONDS",
        help="how long the storage may stay unreachable, at start or later, before the worker "
        "gives up with exit status 2 (default 300)",
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
    )


def _at_least(minimum: float, kind: Callable[[str], Any] = int) -> Callable[[str], Any]:
    """An argparse type: a finite number of ``kind`` at least ``minimum``."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (math.isfinite(value) and value >= minimum):
            raise argparse.ArgumentTypeError(f"must be at least {minimum:g}, got {text}")
        return value

    return parse


def _pruner_name(name: str) -> str:
    # The benchmark package is imported when a worker parses its arguments, not with this module.
    from optuna_qsvr.benchmark import method_argument

    return method_argument(name)


def run_worker_command(args: Any) -> int:
    """``optuna-qsvr worker``: one worker replaying a learning-curve table into a shared study.

    Each trial takes the configuration its number selects in a seeded order, reports its
    recorded values epoch by epoch (sleeping ``--epoch-seconds`` per epoch to stand in for
    training) and obeys the pruner; the worker stops when the study's budget is used.
    Returns 0, or 2 when the storage stayed unreachable longer than ``--max-outage``.
    """
    import optuna

    from optuna_qsvr.benchmark import CurveTable, config_sequence, make_objective, make_pruner

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from optuna_qsvr.benchmark._table import bundled_tables

    secrets = url_secrets(args.storage)
    scrub_logs(secrets)
    bundled = bundled_tables()
    path = args.curves
    if not os.path.exists(path) and path in bundled:
        path = str(bundled[path])
    grace, interval = args.grace_period, args.heartbeat_interval
    if grace is not None and interval and grace <= interval:
        # Live trials would be failed between two of their own heartbeats.
        return _refuse(f"--grace-period {grace} must exceed --heartbeat-interval {interval}")
    try:
        table = CurveTable.load(path)
        table.check_direction(args.direction)
    except (OSError, ValueError) as err:
        return _refuse(str(err))
    order = config_sequence(table, args.seed, len(table))
    try:
        storage = open_storage(
            args.storage,
            heartbeat_interval=args.heartbeat_interval or None,
            grace_period=args.grace_period,
            max_wait=args.max_outage,
        )
    except (StorageUnavailableError, ValueError) as err:
        return _give_up(err, args.storage)
    pruner = make_pruner(
        args.pruner,
        max_resource=table.max_step,
        reduction_factor=args.reduction_factor,
        annealer=args.annealer,
        table=table,  # the oracle's final values
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
        return _give_up(err, args.storage)
    _logger.info(
        "worker done: study %r has %d trials in its budget", study.study_name, budget_used(study)
    )
    return 0


def _refuse(message: str) -> int:
    print(f"optuna-qsvr worker: error: {message}", file=sys.stderr)
    return 2


def _give_up(err: Exception, url: str) -> int:
    # One line, no traceback: the retries above already said what failed each time.
    print(f"optuna-qsvr worker: error: {err} (storage {redact(url)})", file=sys.stderr)
    return 2


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

    from optuna_qsvr._proxy import ProxyUnavailableError, is_proxy_error

    seen: set[int] = set()
    e: BaseException | None = err
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(
            e,
            (
                sa_exc.DBAPIError,
                sa_exc.InterfaceError,
                optuna.exceptions.StorageInternalError,
                ProxyUnavailableError,
            ),
        ) or is_proxy_error(e):
            return True
        e = e.__cause__ or e.__context__
    return False
