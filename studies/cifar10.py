"""CNN on CIFAR-10: 5 hyperparameters, 100 epochs, maximise validation accuracy.

Reads the official python batches (``cifar-10-batches-py``) from ``--data-dir``; nothing is
downloaded. The five training batches train, ``test_batch`` validates.

Example::

    python -m studies.cifar10 --data-dir ~/data --n-trials 50 --pruner swift-svr
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from functools import partial

NAME = "cifar10"
DEFAULT_EPOCHS = 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--max-train", type=int, default=None, help="training image subset")
    parser.add_argument("--max-val", type=int, default=None, help="validation image subset")
    parser.add_argument("--min-filters", type=int, default=8, help="search range of the width")
    parser.add_argument("--max-filters", type=int, default=64)


def make_objective(args: argparse.Namespace):
    """Load CIFAR-10 once and build the objective for this worker."""
    from studies._cnn import make_objective as cnn_objective
    from studies._cnn import suggest_cifar_config
    from studies._common import resolve_device
    from studies._image_data import DataFileMissing, load_cifar10

    try:
        data = load_cifar10(
            args.data_dir or ".", max_train=args.max_train, max_val=args.max_val, seed=args.seed
        )
    except DataFileMissing as e:
        raise SystemExit(f"python -m studies.{NAME}: {e}") from None
    return cnn_objective(
        data,
        partial(
            suggest_cifar_config,
            batch_size=args.batch_size,
            metric="accuracy",
            filters=(args.min_filters, args.max_filters),
        ),
        epochs=args.epochs,
        seed=args.seed,
        device=resolve_device(args.device),
    )


def main(argv: Sequence[str] | None = None):
    from studies._common import main_for

    return main_for(
        argv,
        name=NAME,
        description=__doc__.split("\n\n")[0],
        default_epochs=DEFAULT_EPOCHS,
        direction="maximize",
        add_arguments=add_arguments,
        make_objective=make_objective,
    )


if __name__ == "__main__":
    main()
