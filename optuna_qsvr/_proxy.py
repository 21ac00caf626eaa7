"""Optuna's gRPC storage proxy for many workers: the ``proxy`` command that serves one
database to them, and the workers' client with a heartbeat the proxy can carry.

Each worker process that talks to PostgreSQL directly holds database connections of its own;
hundreds of them exhaust the server's ``max_connections``. One proxy holds a fixed pool
(``--threads`` connections) and the workers reach it with ``--storage grpc://HOST:PORT``.
The proxy speaks plain gRPC without authentication or TLS: run it on a private network.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any
from urllib.parse import urlsplit

import optuna
from optuna.storages._heartbeat import BaseHeartbeat

from optuna_qsvr import _records
from optuna_qsvr._heartbeat import HeartbeatWatch, beat_attribute
from optuna_qsvr._secrets import ScrubbingFilter, redact, scrub, url_secrets

_logger = logging.getLogger("optuna_qsvr.proxy")

DEFAULT_PORT = 13000
# A call that fails for these reasons may succeed later: the proxy is down or restarting
# (UNAVAILABLE), or its database raised (UNKNOWN carries the server-side exception).
_RETRY_CODES = ("UNAVAILABLE", "UNKNOWN", "DEADLINE_EXCEEDED", "INTERNAL", "RESOURCE_EXHAUSTED")


class ProxyUnavailableError(ConnectionError):
    """No gRPC proxy answered at the address within the time allowed."""


def parse_grpc_url(url: str) -> tuple[str, int]:
    """``(host, port)`` of ``grpc://HOST:PORT`` (port 13000, Optuna's default, when absent).

    Raises:
        ValueError: ``url`` is not of that form.
    """
    parts = urlsplit(url)
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        port = None
    if parts.scheme != "grpc" or not parts.hostname or port is None or parts.path.strip("/"):
        raise ValueError("not a gRPC proxy URL: want grpc://HOST:PORT")
    return parts.hostname, port


def _status(err: BaseException) -> tuple[str, str] | None:
    grpc = sys.modules.get("grpc")  # no gRPC call was made unless grpc is imported
    if grpc is None or not isinstance(err, grpc.RpcError) or not hasattr(err, "code"):
        return None
    code = err.code()
    return getattr(code, "name", str(code)), (err.details() or "")


def is_proxy_error(err: BaseException) -> bool:
    """Whether ``err`` is a failed gRPC call that may succeed once the proxy or its database
    is back."""
    status = _status(err)
    return status is not None and status[0] in _RETRY_CODES


def describe_proxy_error(err: BaseException) -> str | None:
    """One line for a failed gRPC call (its status and first line of details), else ``None``."""
    status = _status(err)
    if status is None:
        return None
    code, details = status
    first = details.splitlines()[0] if details else ""
    # The proxy relays an exception of its storage as UNKNOWN with this prefix.
    first = first.replace("Exception calling application: ", "the proxy's database: ")
    return f"gRPC {code}: {first}"


class ProxyStorage(optuna.storages.GrpcStorageProxy, BaseHeartbeat):
    """:class:`optuna.storages.GrpcStorageProxy` with a heartbeat the proxy can carry.

    Optuna's heartbeat table is reached only through ``RDBStorage``; the gRPC API has no call
    for it. Here a running trial beats by writing the time into its system attribute
    ``optuna_qsvr:heartbeat``, and a trial is silent when that value has not changed for the
    grace period as timed by the worker watching it (see :class:`~optuna_qsvr._heartbeat.
    HeartbeatWatch`). A worker must therefore watch a trial for the grace period before it
    fails it; the last worker alive does so before it exits. Workers on the database write the
    attribute too, so both kinds can share a study.

    Args:
        host: the proxy's host.
        port: the proxy's port.
        heartbeat_interval: seconds between a running trial's beats; ``None``: no heartbeat.
        grace_period: seconds of silence after which a trial is failed (default four
            intervals).
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        heartbeat_interval: int | None = None,
        grace_period: int | None = None,
    ) -> None:
        with warnings.catch_warnings():
            # Optuna still marks the proxy experimental; it is the supported path here.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            super().__init__(host=host, port=port)
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period or (heartbeat_interval or 0) * 4 or None
        self._watch = HeartbeatWatch()

    def check(self, timeout: float) -> None:
        """Return once the proxy answers and its database does; else raise.

        Raises:
            ProxyUnavailableError: no proxy answered within ``timeout`` seconds.
            grpc.RpcError: the proxy answered with an error (its database is down).
        """
        try:
            self.wait_server_ready(timeout=timeout)
        except ConnectionError:
            raise ProxyUnavailableError(
                f"no gRPC proxy answers at {self._host}:{self._port} within {timeout:.0f} s"
            ) from None
        try:  # Any answer but an error means the database behind the proxy answered.
            self.get_study_id_from_name("optuna-qsvr connection check")
        except KeyError:
            pass

    # Optuna's heartbeat interface, carried by a trial system attribute.
    def record_heartbeat(self, trial_id: int) -> None:
        beat_attribute(self, trial_id)

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> Any:
        from optuna_qsvr._worker import requeue_trial

        return requeue_trial

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        grace = float(self.grace_period or 0)
        return [tid for tid, age, _ in self.silent_ages(study_id) if age > grace]

    def silent_ages(self, study_id: int) -> list[tuple[int, float, bool]]:
        """``(trial id, seconds its heartbeat has not changed, whether it was seen changing)``
        of each RUNNING trial, timed from when this process first saw it."""
        from optuna.trial import TrialState

        running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        ages = self._watch.observe(
            {t._trial_id: t.system_attrs.get(_records.HEARTBEAT_ATTR) for t in running}
        )
        return [(tid, age, beating) for tid, (age, beating) in ages.items()]


def add_proxy_arguments(parser: Any) -> None:
    parser.add_argument(
        "--storage",
        required=True,
        help="the database URL to serve, e.g. postgresql+psycopg://USER@HOST/DB (give the "
        "password in PGPASSWORD or ~/.pgpass, not in the URL)",
    )
    parser.add_argument(
        "--host", default="localhost", help="address to listen on (0.0.0.0: every interface)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--threads",
        type=int,
        default=10,
        help="calls served at once, and the most database connections the proxy holds "
        "(default 10)",
    )
    parser.add_argument(
        "--max-outage",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long the database may stay unreachable at start before the proxy gives up "
        "with exit status 2 (default 300)",
    )
    parser.add_argument("--log-level", default="INFO")


def run_proxy_command(args: Any) -> int:
    """``optuna-qsvr proxy``: serve one database to workers through Optuna's gRPC proxy.

    Returns 0 on SIGTERM or Ctrl-C, or 2 after one line when the URL is not a database URL,
    the database stayed unreachable for ``--max-outage`` seconds, or the port is taken.
    """
    import signal
    from concurrent.futures import ThreadPoolExecutor

    import grpc  # noqa: F401 - before the database: a missing extra is named at once

    from optuna_qsvr._worker import StorageUnavailableError, open_storage

    secrets = url_secrets(args.storage)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    # The database password and any token, in every line, gRPC's tracebacks included.
    handler.addFilter(ScrubbingFilter(secrets))
    logging.basicConfig(level=args.log_level.upper(), handlers=[handler], force=True)
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    if args.threads < 1:
        return _fail(f"--threads must be >= 1, got {args.threads}", args.storage)
    if args.storage.startswith(("grpc:", "journal:")):
        return _fail("the proxy serves a database URL (sqlite, postgresql, mysql)", args.storage)
    try:
        rdb = open_storage(
            args.storage,
            heartbeat_interval=None,
            max_wait=args.max_outage,
            pool_size=args.threads,
        )
    except (StorageUnavailableError, ValueError) as err:
        return _fail(str(err), args.storage)
    # Optuna's own advice: the cached storage keeps finished trials in the proxy's memory.
    storage = optuna.storages.get_storage(rdb)
    signal.signal(signal.SIGTERM, _interrupt)  # Kubernetes and Slurm stop with SIGTERM
    _logger.info(
        "serving %s on %s:%d with %d threads (at most %d database connections)",
        redact(args.storage),
        args.host,
        args.port,
        args.threads,
        args.threads,
    )
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    try:
        optuna.storages.run_grpc_proxy_server(
            storage,
            host=args.host,
            port=args.port,
            thread_pool=ThreadPoolExecutor(max_workers=args.threads),
        )
    except RuntimeError as err:  # grpc's "Failed to bind to address"
        return _fail(f"cannot listen on {args.host}:{args.port}: {err}", args.storage)
    except KeyboardInterrupt:
        _logger.info("stopped")
    return 0


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _fail(message: str, url: str) -> int:
    text = scrub(message, url_secrets(url))
    print(f"optuna-qsvr proxy: error: {text} (storage {redact(url)})", file=sys.stderr)
    return 2
