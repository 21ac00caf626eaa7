"""What every study's command line shares: arguments, the sampler by name, the run loop."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

# Where the recording scripts write their tables: the package's bundled tables in this checkout
# (studies/ is not installed, so it always runs from one).
CURVES_DIR = Path(__file__).resolve().parents[1] / "optuna_qsvr" / "benchmark" / "curves"
# The benchmark's methods but the oracle, which needs a recorded table's final values.
NO_LIVE_PRUNER = ("oracle",)


def pruner_name(name: str) -> str:
    """Any method name of ``optuna-qsvr benchmark`` a live study can run (not the oracle)."""
    from optuna_qsvr.benchmark import method_argument

    if name in NO_LIVE_PRUNER:
        raise argparse.ArgumentTypeError("the oracle needs a recorded table's final values")
    return method_argument(name)


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    import optuna

    from optuna_qsvr import SwiftSampler

    if name == "tpe":
        base = optuna.samplers.TPESampler(seed=seed)
    elif name == "random":
        base = optuna.samplers.RandomSampler(seed=seed)
    else:
        raise ValueError(f"unknown sampler {name!r}; choose tpe or random")
    return SwiftSampler(base)


def build_parser(name: str, description: str, default_epochs: int) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m studies.{name}", description=description)
    parser.add_argument(
        "--storage",
        default=f"sqlite:///{name}.db",
        help="Optuna storage URL (SQLite by default; postgresql://... for many nodes)",
    )
    parser.add_argument("--study-name", default=name)
    parser.add_argument("--n-trials", type=int, default=None, help="trials for this worker")
    parser.add_argument(
        "--budget",
        type=int,
        default=None,
        help="trials for the whole study across all workers (default: 20 if no --n-trials)",
    )
    parser.add_argument("--timeout", type=float, default=None, help="seconds for this worker")
    parser.add_argument(
        "--heartbeat-interval",
        type=int,
        default=30,
        help="seconds between heartbeats of a running trial (RDB storages); 0 turns them off",
    )
    parser.add_argument("--grace-period", type=int, default=None, help="default 4 heartbeats")
    parser.add_argument("--epochs", type=int, default=default_epochs, help="max epochs per trial")
    parser.add_argument("--data-dir", default=None, help="folder holding the dataset's files")
    parser.add_argument(
        "--pruner",
        type=pruner_name,
        default="swift-svr",
        help="any method of `optuna-qsvr benchmark` but oracle (default swift-svr)",
    )
    parser.add_argument("--sampler", choices=("tpe", "random"), default="tpe")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="torch device (default: cuda if seen)")
    return parser


def resolve_device(requested: str | None) -> str:
    import torch

    if requested:
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def run_study(
    args: argparse.Namespace,
    objective: Callable[[optuna.trial.Trial], float],
    *,
    direction: str,
    min_resource: int = 1,
    reduction_factor: int = 3,
) -> optuna.study.Study:
    """Create or join the study in ``args.storage`` and run trials until the budget is used.

    Many workers may run this at once against one storage: the study is created by the first
    and joined by the others, and the budget counts trials across all of them.
    """
    import optuna

    from optuna_qsvr._secrets import url_secrets
    from optuna_qsvr._worker import open_storage, run_worker
    from optuna_qsvr.benchmark import make_pruner

    storage = open_storage(
        args.storage,
        heartbeat_interval=args.heartbeat_interval or None,
        grace_period=args.grace_period,
    )

    def make_study() -> optuna.study.Study:
        return optuna.create_study(
            storage=storage,
            study_name=args.study_name,
            direction=direction,
            load_if_exists=True,
            sampler=make_sampler(args.sampler, args.seed),
            pruner=make_pruner(
                args.pruner,
                max_resource=args.epochs,
                min_resource=min_resource,
                reduction_factor=reduction_factor,
            ),
        )

    budget = args.budget if args.budget is not None or args.n_trials is not None else 20
    return run_worker(
        make_study,
        objective,
        budget=budget,
        n_trials=args.n_trials,
        timeout=args.timeout,
        secrets=url_secrets(args.storage),
    )


def epochs_used(study: optuna.study.Study) -> int:
    """Epochs actually trained: the last reported step of every finished trial."""
    return sum(t.last_step or 0 for t in study.trials if t.last_step is not None)


def print_summary(study: optuna.study.Study, storage: str) -> None:
    import optuna

    states = [t.state for t in study.trials]
    n_pruned = states.count(optuna.trial.TrialState.PRUNED)
    n_complete = states.count(optuna.trial.TrialState.COMPLETE)
    print(
        f"study {study.study_name!r}: {len(states)} trials, {n_complete} complete, "
        f"{n_pruned} pruned, {epochs_used(study)} epochs trained"
    )
    if n_complete:
        best = study.best_trial
        print(f"best trial #{best.number}: value {best.value:.5g}, params {best.params}")
    from optuna_qsvr._secrets import redact

    if any(t.user_attrs.get("swift:bracket") is not None for t in study.trials):
        try:
            from optuna_qsvr.report import publish_plots

            publish_plots(study)
        except ImportError:
            pass  # optuna-dashboard is optional; the attributes are there without it.
    # Never echo a database password.
    shown = redact(storage)
    print(
        f"decisions and predictor fits: optuna-qsvr report --storage {shown} "
        f"--study-name {study.study_name}"
    )
    print(f"inspect it: optuna-dashboard {shown}")


def configure_threads() -> None:
    """One intra-op thread per worker unless the user says otherwise: workers share nodes."""
    import torch

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)


def main_for(
    argv: Sequence[str] | None,
    *,
    name: str,
    description: str,
    default_epochs: int,
    direction: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    make_objective: Callable[[argparse.Namespace], Callable[[optuna.trial.Trial], float]],
) -> optuna.study.Study:
    """The whole command line of one study: parse, build the objective, run, summarise."""
    parser = build_parser(name, description, default_epochs)
    add_arguments(parser)
    args = parser.parse_args(argv)
    configure_threads()
    objective = make_objective(args)
    study = run_study(args, objective, direction=direction)
    print_summary(study, args.storage)
    return study
