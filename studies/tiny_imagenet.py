"""CNN on Tiny ImageNet: 3 hyperparameters, 35 epochs, minimise validation loss.

Reads the official ``tiny-imagenet-200`` folder (``wnids.txt``, ``train/<wnid>/images``,
``val/images`` with ``val/val_annotations.txt``) from ``--data-dir``; nothing is downloaded.

Example::

    python -m studies.tiny_imagenet --data-dir ~/data --n-trials 50 --pruner swift-svr
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from functools import partial

NAME = "tiny_imagenet"
DEFAULT_EPOCHS = 35


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--filters", type=int, default=32, help="width of the first block")
    parser.add_argument("--max-classes", type=int, default=None, help="first N of wnids.txt")
    parser.add_argument("--max-train", type=int, default=None, help="training image subset")
    parser.add_argument("--max-val", type=int, default=None, help="validation image subset")


def make_objective(args: argparse.Namespace):
    """Load Tiny ImageNet once and build the objective for this worker."""
    from studies._cnn import make_objective as cnn_objective
    from studies._cnn import suggest_tiny_imagenet_config
    from studies._common import resolve_device
    from studies._image_data import DataFileMissing, load_tiny_imagenet

    try:
        data = load_tiny_imagenet(
            args.data_dir or ".",
            max_classes=args.max_classes,
            max_train=args.max_train,
            max_val=args.max_val,
        )
    except DataFileMissing as e:
        raise SystemExit(f"python -m studies.{NAME}: {e}") from None
    suggest = partial(
        suggest_tiny_imagenet_config,
        filters=args.filters,
        batch_size=args.batch_size,
        metric="loss",
    )
    return cnn_objective(
        data, suggest, epochs=args.epochs, seed=args.seed, device=resolve_device(args.device)
    )


def main(argv: Sequence[str] | None = None):
    from studies._common import main_for

    return main_for(
        argv,
        name=NAME,
        description=__doc__.split("\n\n")[0],
        default_epochs=DEFAULT_EPOCHS,
        direction="minimize",
        add_arguments=add_arguments,
        make_objective=make_objective,
    )


if __name__ == "__main__":
    main()
