"""Optuna's RDB storage with trial state changes that are atomic on SQLite too.

``RDBStorage.set_trial_state_values`` reads a trial's state, checks it, and writes the new one,
relying on ``SELECT ... FOR UPDATE`` to keep other processes out in between. SQLite has no row
locks, and its Python driver opens a transaction only at the first write, so two workers can
both read a WAITING trial and both start it (``Study.ask`` runs one queued trial twice), or
both fail the same silent RUNNING trial and both queue it again (``benchmarks/state_race.py``:
with four processes on one SQLite file, up to all four won the same change, in most trials).
Here each change first claims the row with a conditional write (``UPDATE ... WHERE state IN
(...)``), which every database applies atomically: one process's claim matches the row, the
others' match none, and they are told so as Optuna tells a loser.

The fit lease gets the same treatment where the storage API cannot give it: a claim request a
worker writes through the gRPC proxy (which serves this storage) is claimed here atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import optuna
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import TrialState
from sqlalchemy import exc as sa_exc
from sqlalchemy import update

from optuna_qsvr import _lease

_UNFINISHED = (TrialState.WAITING, TrialState.RUNNING)


class AtomicStateRDBStorage(optuna.storages.RDBStorage):
    """:class:`optuna.storages.RDBStorage` whose ``set_trial_state_values`` is a
    compare-and-set: the same answers as Optuna's (``True`` for the process that changed the
    state; ``False`` for a trial that is no longer WAITING when asked to run;
    :class:`~optuna.exceptions.UpdateFinishedTrialError` for a finished one), decided by the
    database's conditional update rather than by a row lock SQLite does not have.

    The workers and the studies open it; open it yourself when your own processes share one
    SQLite study. Its constructor is ``RDBStorage``'s.

    Example:

        .. code-block:: python

            import optuna
            from optuna_qsvr import AtomicStateRDBStorage

            storage = AtomicStateRDBStorage("sqlite:///shared.db")
            study = optuna.create_study(storage=storage, study_name="shared", load_if_exists=True)
            study.enqueue_trial({"x": 1.0})
            trial = study.ask()  # one process wins a queued trial, however many ask at once
            x = trial.suggest_float("x", 0.0, 2.0)
            assert x == 1.0
            study.tell(trial, x**2)
    """

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        # Only a WAITING trial may start; any unfinished one may finish.
        sources = (TrialState.WAITING,) if state == TrialState.RUNNING else _UNFINISHED
        trial_model = models.TrialModel
        try:
            with _create_scoped_session(self.scoped_session) as session:
                # The claim: a write that changes nothing, made only if the state is still one
                # it may leave. It opens the write transaction (SQLite) or locks the row
                # (PostgreSQL, MySQL) before the state is read, so a racing process's claim
                # waits for this commit and then matches no row.
                claimed = session.execute(
                    update(trial_model)
                    .where(trial_model.trial_id == trial_id, trial_model.state.in_(sources))
                    .values(state=trial_model.state)
                    .execution_options(synchronize_session=False)
                ).rowcount
                trial = trial_model.find_or_raise_by_id(trial_id, session)
                if claimed != 1:
                    self.check_trial_is_updatable(trial_id, trial.state)
                    return False
                # From here on, Optuna's own steps.
                for objective, value in enumerate(values or ()):
                    self._set_trial_value_without_commit(session, trial, objective, value)
                trial.state = state
                if state == TrialState.RUNNING:
                    trial.datetime_start = datetime.now()
                if state.is_finished():
                    trial.datetime_complete = datetime.now()
        except sa_exc.IntegrityError:
            return False
        return True

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        # A fit-lease claim request (see optuna_qsvr._lease.try_claim) is claimed atomically
        # rather than overwritten: behind the gRPC proxy this is the only place where a
        # compare-and-set can happen. Every other attribute is Optuna's.
        claim = _lease.claim_from_request(key, value)
        if claim is None:
            super().set_study_system_attr(study_id, key, value)
        else:
            _lease.claim_rdb(self, study_id, key, claim)
