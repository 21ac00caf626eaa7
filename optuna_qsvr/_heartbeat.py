"""How a RUNNING trial shows it is alive, whichever storage its worker reaches.

A worker on the database beats in Optuna's heartbeat table; a worker behind the gRPC proxy
cannot reach that table and beats in the trial's system attribute ``optuna_qsvr:heartbeat``.
Both kinds may share one study, so every worker also writes the attribute, and a watcher that
cannot read the table times the attribute.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from optuna_qsvr import _records


def beat_attribute(storage: Any, trial_id: int) -> None:
    """Write the time into the trial's heartbeat attribute."""
    storage.set_trial_system_attr(trial_id, _records.HEARTBEAT_ATTR, round(time.time(), 3))


class HeartbeatWatch:
    """Times each RUNNING trial's silence from when this process saw its heartbeat change.

    The watcher's own monotonic clock times it, so the workers' clocks need not agree; the
    price is that a trial counts as silent from when this process first saw it until its
    heartbeat changes.
    """

    def __init__(self) -> None:
        # trial id -> (its heartbeat as last seen, when that value was first seen, seen changing)
        self._seen: dict[int, tuple[Any, float, bool]] = {}

    def observe(self, beats: Mapping[int, Any]) -> dict[int, tuple[float, bool]]:
        """For each RUNNING trial id and its heartbeat now (any comparable value; ``None`` if
        it has none): seconds since the heartbeat last changed, or since this process first
        saw the trial, and whether it has been seen changing. Trials absent from ``beats``
        are forgotten."""
        now = time.monotonic()
        seen: dict[int, tuple[Any, float, bool]] = {}
        for trial_id, beat in beats.items():
            last, since, changing = self._seen.get(trial_id, (beat, now, False))
            if last != beat:
                since, changing = now, True
            seen[trial_id] = (beat, since, changing)
        self._seen = seen
        return {tid: (now - since, changing) for tid, (_, since, changing) in seen.items()}
