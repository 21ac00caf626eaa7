from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import torch

from studies import _babi, babi17
from studies._common import build_parser

# The first stories of a task-17 file, byte for byte in the official layout (tab-separated
# answer and supporting ids, line ids restarting at 1 for each story).
OFFICIAL_SAMPLE = (
    "1 The triangle is above the pink rectangle.\n"
    "2 The blue square is to the left of the triangle.\n"
    "3 Is the pink rectangle to the right of the blue square?\tyes\t1 2\n"
    "4 Is the blue square to the right of the pink rectangle?\tno\t1 2\n"
    "5 Is the blue square below the pink rectangle?\tno\t1 2\n"
    "6 Is the pink rectangle below the blue square?\tyes\t1 2\n"
    "7 Is the blue square above the pink rectangle?\tyes\t1 2\n"
    "8 Is the pink rectangle to the left of the blue square?\tno\t1 2\n"
    "9 Is the pink rectangle above the blue square?\tno\t1 2\n"
    "10 Is the blue square to the left of the pink rectangle?\tyes\t1 2\n"
    "1 The red sphere is to the left of the yellow square.\n"
    "2 The red sphere is below the pink rectangle.\n"
    "3 Is the pink rectangle to the left of the yellow square?\tyes\t1 2\n"
    "4 Is the yellow square above the pink rectangle?\tno\t1 2\n"
    "5 Is the pink rectangle above the yellow square?\tyes\t1 2\n"
    "6 Is the yellow square to the left of the pink rectangle?\tno\t1 2\n"
    "7 Is the yellow square below the pink rectangle?\tyes\t1 2\n"
    "8 Is the pink rectangle to the right of the yellow square?\tno\t1 2\n"
    "9 Is the yellow square to the right of the pink rectangle?\tyes\t1 2\n"
    "10 Is the pink rectangle below the yellow square?\tno\t1 2\n"
)

_STATEMENT = re.compile(r"^(.+) is (above|below|to the left of|to the right of) (.+)\.$")
_QUESTION = re.compile(r"^Is (.+) (above|below|to the left of|to the right of) (.+)\?$")
_STEP = {
    "above": (0, 1),
    "below": (0, -1),
    "to the left of": (-1, 0),
    "to the right of": (1, 0),
}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # Several workers share the test machine; extra intra-op threads only slow them down.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _solve(question: _babi.Question) -> str:
    """Answer from the text alone: place the objects on a grid, then compare positions."""
    facts = []
    for _, text in question.context:
        subject, relation, reference = _STATEMENT.match(text).groups()
        facts.append((subject.lower(), _STEP[relation], reference.lower()))
    position = {facts[0][2]: (0, 0)}
    for _ in range(2):
        for subject, (dx, dy), reference in facts:
            if reference in position and subject not in position:
                x, y = position[reference]
                position[subject] = (x + dx, y + dy)
            elif subject in position and reference not in position:
                x, y = position[subject]
                position[reference] = (x - dx, y - dy)
    subject, relation, reference = _QUESTION.match(question.text).groups()
    (sx, sy), (rx, ry) = position[subject.lower()], position[reference.lower()]
    dx, dy = _STEP[relation]
    return "yes" if dx * (sx - rx) + dy * (sy - ry) > 0 else "no"


def _write_official(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "qa17_positional-reasoning_train.txt").write_text(OFFICIAL_SAMPLE)
    (folder / "qa17_positional-reasoning_test.txt").write_text(OFFICIAL_SAMPLE)


def test_official_sample_parses_into_stories() -> None:
    stories = _babi.parse_babi(OFFICIAL_SAMPLE.splitlines(keepends=True))

    assert [len(s) for s in stories] == [8, 8]
    first = stories[0][0]
    assert first.context == (
        (1, "The triangle is above the pink rectangle."),
        (2, "The blue square is to the left of the triangle."),
    )
    assert first.text == "Is the pink rectangle to the right of the blue square?"
    assert first.answer == "yes"
    assert first.supporting == (1, 2)
    second = stories[1][-1]
    assert second.context[0] == (1, "The red sphere is to the left of the yellow square.")
    assert second.text == "Is the pink rectangle below the yellow square?"
    assert second.answer == "no"
    assert [q.answer for q in stories[1]] == ["yes", "no", "yes", "no", "yes", "no", "yes", "no"]


def test_reference_solver_agrees_with_official_answers() -> None:
    for story in _babi.parse_babi(OFFICIAL_SAMPLE.splitlines()):
        for question in story:
            assert _solve(question) == question.answer


def test_question_sees_only_statements_before_it() -> None:
    text = "1 A is above B.\n2 Is A above B?\tyes\t1\n3 C is below A.\n4 Is C below A?\tyes\t3\n"
    (story,) = _babi.parse_babi(text.splitlines())

    assert [q.context for q in story] == [
        ((1, "A is above B."),),
        ((1, "A is above B."), (3, "C is below A.")),
    ]
    assert [q.supporting for q in story] == [(1,), (3,)]


@pytest.mark.parametrize(
    "subfolder", ["", "en", "en-10k", "tasks_1-20_v1-2/en", "tasks_1-20_v1-2/en-10k"]
)
def test_loader_finds_official_layouts(tmp_path: Path, subfolder: str) -> None:
    _write_official(tmp_path / subfolder)

    data = _babi.load_task17(tmp_path, valid_fraction=0.5)

    assert data.answers == ["no", "yes"]
    assert {"triangle", "rectangle", "sphere", "left", "pink"} <= set(data.vocab)
    assert data.vocab[0] == _babi.PAD
    assert (len(data.train), len(data.valid), len(data.test)) == (8, 8, 16)
    # The first training question, decoded back from its indices.
    story = [data.vocab[i] for i in data.train.story[0].tolist() if i]
    question = [data.vocab[i] for i in data.train.question[0].tolist() if i]
    assert story == _babi.tokenize(
        "The triangle is above the pink rectangle. The blue square is to the left of the triangle."
    )
    assert question == _babi.tokenize("Is the pink rectangle to the right of the blue square?")
    assert data.answers[int(data.train.answer[0])] == "yes"


def test_missing_files_name_the_paths_searched(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "qa17_positional-reasoning_train.txt").write_text(OFFICIAL_SAMPLE)

    with pytest.raises(FileNotFoundError) as excinfo:
        _babi.load_task17(tmp_path)

    message = str(excinfo.value)
    assert str(tmp_path / "en") in message
    assert str(tmp_path / "tasks_1-20_v1-2" / "en-10k") in message
    assert "Nothing is downloaded" in message


def test_generator_writes_official_names_and_round_trips(tmp_path: Path) -> None:
    train, test = _babi.generate_task17(tmp_path, n_train_stories=6, n_test_stories=3, seed=1)

    assert (train.name, test.name) == (
        "qa17_positional-reasoning_train.txt",
        "qa17_positional-reasoning_test.txt",
    )
    lines = train.read_text().splitlines()
    assert re.fullmatch(r"1 The [a-z ]+ is (above|below|to the [a-z]+ of) the [a-z ]+\.", lines[0])
    assert re.fullmatch(r"3 Is the [a-z ]+\?\t(yes|no)\t1 2", lines[2])
    stories = _babi.parse_babi(lines)
    assert len(stories) == 6
    assert all(len(s) == 8 and all(q.supporting == (1, 2) for q in s) for s in stories)
    data = _babi.load_task17(tmp_path, valid_fraction=0.5)
    assert (len(data.train), len(data.valid), len(data.test)) == (24, 24, 24)
    assert set(_babi.SHAPES) <= set(data.vocab)


def test_generator_is_seeded(tmp_path: Path) -> None:
    a, _ = _babi.generate_task17(tmp_path / "a", n_train_stories=5, seed=3)
    b, _ = _babi.generate_task17(tmp_path / "b", n_train_stories=5, seed=3)
    c, _ = _babi.generate_task17(tmp_path / "c", n_train_stories=5, seed=4)

    assert a.read_text() == b.read_text()
    assert a.read_text() != c.read_text()


@pytest.mark.parametrize("colour_probability", [0.0, 0.8, 1.0])
@pytest.mark.parametrize("questions_per_story", [2, 8])
def test_generated_answers_follow_from_the_story(
    tmp_path: Path, colour_probability: float, questions_per_story: int
) -> None:
    train, _ = _babi.generate_task17(
        tmp_path,
        n_train_stories=200,
        questions_per_story=questions_per_story,
        colour_probability=colour_probability,
        seed=7,
    )
    stories = _babi.parse_babi(train.read_text().splitlines())

    relations = set()
    for story in stories:
        answers = [q.answer for q in story]
        assert answers.count("yes") == answers.count("no") == questions_per_story // 2
        for question in story:
            assert _solve(question) == question.answer
            relations.add(_QUESTION.match(question.text).group(2))
    assert relations == set(_babi.RELATIONS)
    coloured = any(c in train.read_text() for c in _babi.COLOURS)
    assert coloured == (colour_probability > 0)


def test_function_words_are_dropped_without_losing_content(tmp_path: Path) -> None:
    _write_official(tmp_path)

    data = _babi.load_task17(tmp_path, drop_words=_babi.FUNCTION_WORDS)

    assert not _babi.FUNCTION_WORDS & set(data.vocab)
    question = [data.vocab[i] for i in data.train.question[0].tolist() if i]
    assert question == ["pink", "rectangle", "right", "blue", "square"]


def test_train_epochs_is_deterministic_and_yields_accuracies(tmp_path: Path) -> None:
    _babi.generate_task17(tmp_path, n_train_stories=10, n_test_stories=2, seed=0)
    data = _babi.load_task17(tmp_path, valid_fraction=0.3)
    config = babi17.LSTMConfig(learning_rate=1e-2, hidden_size=8, dropout=0.2, batch_size=32)

    first = list(babi17.train_epochs(config, data, 3, seed=5))
    again = list(babi17.train_epochs(config, data, 3, seed=5))

    assert first == again
    assert len(first) == 3
    # Accuracies are multiples of 1/n on the validation split.
    n = len(data.valid)
    assert all(0 <= a <= 1 and abs(a * n - round(a * n)) < 1e-4 for a in first)


def test_lstm_beats_chance_on_the_compact_task() -> None:
    from studies.record_nlp_curves import recording_data

    data = recording_data(n_stories=600, seed=0)
    config = babi17.LSTMConfig(learning_rate=1.7e-2, hidden_size=51, dropout=0.3, batch_size=128)

    curve = list(babi17.train_epochs(config, data, 35, seed=29))

    # Chance is 0.5 with a standard error of about 0.026 on the 360 validation questions.
    assert curve[0] < 0.56
    assert max(curve[-10:]) > 0.58


def test_objective_reports_every_epoch(tmp_path: Path) -> None:
    parser = build_parser("babi17", "", babi17.DEFAULT_EPOCHS)
    babi17._add_arguments(parser)
    args = parser.parse_args(["--epochs", "3", "--generate-stories", "6"])
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'objective.db'}",
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )

    study.optimize(babi17.make_objective(args), n_trials=2)

    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert sorted(trial.intermediate_values) == [1, 2, 3]
        assert trial.value == trial.intermediate_values[3]
        assert set(trial.params) == {"learning_rate", "hidden_size", "dropout", "batch_size"}


@pytest.mark.parametrize("pruner", ["none", "hyperband"])
def test_study_command_runs_end_to_end(
    tmp_path: Path, pruner: str, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 'babi17.db'}"

    study = babi17.main(
        [
            "--storage", storage,
            "--n-trials", "2",
            "--epochs", "3",
            "--generate-stories", "6",
            "--pruner", pruner,
            "--sampler", "random",
        ]
    )  # fmt: skip

    reloaded = optuna.load_study(study_name="babi17", storage=storage)
    assert len(reloaded.trials) == 2
    for trial in reloaded.trials:
        steps = sorted(trial.intermediate_values)
        assert steps == list(range(1, len(steps) + 1))
        assert steps
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert "babi17" in capsys.readouterr().out


def test_help_says_data_is_generated_offline(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        babi17.main(["--help"])

    out = " ".join(capsys.readouterr().out.split())
    assert "generated offline" in out
    assert "--data-dir" in out


def test_studies_take_the_benchmark_method_names_but_the_oracle(capsys) -> None:
    from optuna_qsvr import SwiftHyperbandPruner
    from optuna_qsvr.benchmark import make_pruner

    parser = build_parser("babi17", "", babi17.DEFAULT_EPOCHS)
    name = parser.parse_args(["--pruner", "swift:p33"]).pruner
    pruner = make_pruner(name, max_resource=9)
    assert isinstance(pruner, SwiftHyperbandPruner) and pruner._options.mode == "paper"
    assert parser.parse_args(["--pruner", "i-epoch-3"]).pruner == "i-epoch-3"
    for bad, says in (("oracle", "recorded table"), ("swift:nope", "'swift:nope'")):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(["--pruner", bad])
        assert exit_info.value.code == 2 and says in capsys.readouterr().err
