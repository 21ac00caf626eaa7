"""The paper's NLP case: an LSTM answering bAbI task 17 (positional reasoning).

Four hyperparameters (learning rate, hidden size, dropout, batch size), 300 epochs by default,
validation accuracy maximised. Run ``python -m studies.babi17 --help``.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from studies import _babi
from studies._common import main_for, resolve_device

if TYPE_CHECKING:
    import optuna
    import torch

NAME = "babi17"
DEFAULT_EPOCHS = 300
EMBED_DIM = 32

# Search space shared by the study and the learning-curve recording.
LEARNING_RATE = (1e-4, 5e-2)
HIDDEN_SIZE = (8, 64)
DROPOUT = (0.0, 0.6)
BATCH_SIZES = (64, 128, 256, 512)


@dataclass(frozen=True)
class LSTMConfig:
    """The four tuned hyperparameters.

    Args:
        learning_rate: Adam step size.
        hidden_size: LSTM state width.
        dropout: dropout on the embeddings and on the final state.
        batch_size: questions per optimiser step.
    """

    learning_rate: float
    hidden_size: int
    dropout: float
    batch_size: int


def suggest_config(trial: optuna.trial.Trial) -> LSTMConfig:
    """Draw the four hyperparameters from the study's search space."""
    return LSTMConfig(
        learning_rate=trial.suggest_float("learning_rate", *LEARNING_RATE, log=True),
        hidden_size=trial.suggest_int("hidden_size", *HIDDEN_SIZE, log=True),
        dropout=trial.suggest_float("dropout", *DROPOUT),
        batch_size=trial.suggest_categorical("batch_size", BATCH_SIZES),
    )


def _build_model(vocab_size: int, n_answers: int, config: LSTMConfig) -> torch.nn.Module:
    import torch
    from torch import nn

    class LSTMReader(nn.Module):
        """Embeds story then question as one sequence and classifies the LSTM's last state."""

        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(vocab_size, EMBED_DIM, padding_idx=0)
            self.lstm = nn.LSTM(EMBED_DIM, config.hidden_size, batch_first=True)
            self.dropout = nn.Dropout(config.dropout)
            self.classifier = nn.Linear(config.hidden_size, n_answers)

        def forward(self, story: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
            tokens = torch.cat([story, question], dim=1)
            _, (hidden, _) = self.lstm(self.dropout(self.embedding(tokens)))
            return self.classifier(self.dropout(hidden[-1]))

    return LSTMReader()


def train_epochs(
    config: LSTMConfig,
    data: _babi.BabiData,
    epochs: int,
    *,
    seed: int = 0,
    device: str = "cpu",
) -> Iterator[float]:
    """Train the LSTM and yield the validation accuracy after every epoch.

    The same seed gives the same initial weights, batch order and dropout masks, hence the
    same curve (on one device and thread count).

    Args:
        config: the hyperparameters.
        data: a task loaded by ``studies._babi.load_task17``.
        epochs: number of passes over the training split.
        seed: seeds initialisation, shuffling and dropout.
        device: torch device.
    """
    import torch

    torch.manual_seed(seed)
    model = _build_model(len(data.vocab), len(data.answers), config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    loss_fn = torch.nn.CrossEntropyLoss()
    train = [t.to(device) for t in (data.train.story, data.train.question, data.train.answer)]
    valid = [t.to(device) for t in (data.valid.story, data.valid.question, data.valid.answer)]
    shuffle = torch.Generator().manual_seed(seed)
    n = len(data.train)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(n, generator=shuffle).to(device)
        for start in range(0, n, config.batch_size):
            idx = order[start : start + config.batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(train[0][idx], train[1][idx]), train[2][idx])
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            predicted = model(valid[0], valid[1]).argmax(dim=1)
            yield (predicted == valid[2]).float().mean().item()


def load_or_generate(
    data_dir: str | None, *, n_stories: int = 125, seed: int = 0
) -> _babi.BabiData:
    """The official files from ``data_dir``, or a generated set when it is None.

    Args:
        data_dir: folder holding the official task-17 files, or None to generate them.
        n_stories: stories per generated split (8 questions each); 125 matches the
            official 1k set.
        seed: generator seed.
    """
    if data_dir is not None:
        return _babi.load_task17(data_dir)
    with tempfile.TemporaryDirectory(prefix="babi17-") as tmp:
        _babi.generate_task17(tmp, n_train_stories=n_stories, n_test_stories=n_stories, seed=seed)
        return _babi.load_task17(tmp)


def make_objective(args: argparse.Namespace) -> Callable[[optuna.trial.Trial], float]:
    """The study's objective: report validation accuracy each epoch, prune when told."""
    import optuna

    data = load_or_generate(args.data_dir, n_stories=args.generate_stories, seed=args.seed)
    device = resolve_device(args.device)

    def objective(trial: optuna.trial.Trial) -> float:
        config = suggest_config(trial)
        accuracy = 0.0
        curve = train_epochs(
            config, data, args.epochs, seed=args.seed + trial.number, device=device
        )
        for epoch, accuracy in enumerate(curve, start=1):
            trial.report(accuracy, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return accuracy

    return objective


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--generate-stories",
        type=int,
        default=125,
        help="without --data-dir: stories per generated split (8 questions each; 125 matches "
        "the official 1k set)",
    )


def main(argv: Sequence[str] | None = None) -> optuna.study.Study:
    """Run the study from the command line."""
    return main_for(
        argv,
        name=NAME,
        description=(
            "LSTM on bAbI task 17 (positional reasoning): 4 hyperparameters, validation "
            "accuracy maximised. --data-dir is a folder holding the official "
            "qa17_*_train.txt/qa17_*_test.txt (or the archive's en/, en-10k/, "
            "tasks_1-20_v1-2/en*/); without it the task is generated offline by "
            "studies._babi (nothing is downloaded)."
        ),
        default_epochs=DEFAULT_EPOCHS,
        direction="maximize",
        add_arguments=_add_arguments,
        make_objective=make_objective,
    )


if __name__ == "__main__":
    main()
