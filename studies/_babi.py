"""bAbI task 17 (positional reasoning): an offline story generator and a loader.

The generator writes stories in the official bAbI text format, so both generated and official
files go through the same loader. A story is two statements placing three objects on a grid
followed by yes/no questions about the two objects never mentioned together::

    1 The triangle is above the pink rectangle.
    2 The blue square is to the left of the triangle.
    3 Is the pink rectangle to the right of the blue square?	yes	1 2

The official files are never downloaded: pass the folder that holds them.
"""

from __future__ import annotations

import random
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

SHAPES = ("triangle", "square", "rectangle", "sphere")
COLOURS = ("red", "blue", "pink", "yellow")
TRAIN_FILE = "qa17_positional-reasoning_train.txt"
TEST_FILE = "qa17_positional-reasoning_test.txt"
# Words every task-17 statement and question contains; they carry no information.
FUNCTION_WORDS = frozenset({"the", "is", "to", "of"})
PAD = "<pad>"
UNK = "<unk>"

# Relation phrase -> (axis, sign): "A <phrase> B" means A's coordinate on `axis` exceeds B's
# when sign is +1 (x grows to the right, y grows upwards).
RELATIONS = {
    "above": (1, 1),
    "below": (1, -1),
    "to the left of": (0, -1),
    "to the right of": (0, 1),
}

# Subfolders of --data-dir where the official archive puts the task files.
_SUBFOLDERS = (".", "en", "en-10k", "tasks_1-20_v1-2/en", "tasks_1-20_v1-2/en-10k")
_TOKEN = re.compile(r"[a-z0-9]+")


# ----------------------------------------------------------------------------- generator


@dataclass(frozen=True)
class _Entity:
    shape: str
    colour: str | None

    @property
    def phrase(self) -> str:
        return f"the {self.colour} {self.shape}" if self.colour else f"the {self.shape}"


def relation_holds(a: tuple[int, int], b: tuple[int, int], relation: str) -> bool:
    """Whether the object at ``a`` is strictly ``relation`` the object at ``b``.

    Args:
        a: ``(x, y)`` grid position of the subject; x grows rightwards, y upwards.
        b: ``(x, y)`` grid position of the reference object.
        relation: one of ``RELATIONS`` ("above", "below", "to the left of", ...).
    """
    axis, sign = RELATIONS[relation]
    return sign * (a[axis] - b[axis]) > 0


def _sample_entities(rng: random.Random, colour_probability: float) -> list[_Entity]:
    # Three distinct objects; a bare shape name is only used when no other object in the
    # story has that shape, so every mention is unambiguous.
    while True:
        entities = [
            _Entity(
                rng.choice(SHAPES),
                rng.choice(COLOURS) if rng.random() < colour_probability else None,
            )
            for _ in range(3)
        ]
        if len(set(entities)) < 3:
            continue
        shapes = [e.shape for e in entities]
        if any(e.colour is None and shapes.count(e.shape) > 1 for e in entities):
            continue
        return entities


def _sentence(words: str) -> str:
    return words[0].upper() + words[1:]


def _statement(subject: _Entity, relation: str, reference: _Entity) -> str:
    return _sentence(f"{subject.phrase} is {relation} {reference.phrase}.")


def _question(subject: _Entity, relation: str, reference: _Entity) -> str:
    return f"Is {subject.phrase} {relation} {reference.phrase}?"


def generate_story(
    rng: random.Random, questions_per_story: int = 8, colour_probability: float = 0.8
) -> str:
    """One story in bAbI text format: two statements, then balanced yes/no questions.

    A hub object sits at the origin; one object is placed a random distance away along one
    axis and the other along the perpendicular axis, so the relation between the two outer
    objects is fixed on both axes and every answer follows from both statements.

    Args:
        rng: the source of randomness (seed it for a reproducible story).
        questions_per_story: an even number of questions, at most 8; half are answered yes.
        colour_probability: chance that an object has a colour; 0 gives bare shapes only, an
            easier variant with a smaller vocabulary.
    """
    if questions_per_story < 2 or questions_per_story > 8 or questions_per_story % 2:
        raise ValueError(
            f"questions_per_story must be an even number in [2, 8], got {questions_per_story}"
        )
    if not 0 <= colour_probability <= 1:
        raise ValueError(f"colour_probability must be in [0, 1], got {colour_probability}")
    hub, first, second = _sample_entities(rng, colour_probability)
    axis_first = rng.randrange(2)
    position = {hub: (0, 0)}
    offset = [0, 0]
    offset[axis_first] = rng.choice((-1, 1)) * rng.randint(1, 3)
    position[first] = (offset[0], offset[1])
    offset = [0, 0]
    offset[1 - axis_first] = rng.choice((-1, 1)) * rng.randint(1, 3)
    position[second] = (offset[0], offset[1])

    lines = []
    for outer in (first, second):
        # Either the outer object or the hub is the grammatical subject, as in the real task.
        subject, reference = (outer, hub) if rng.random() < 0.5 else (hub, outer)
        relation = next(
            r
            for r in RELATIONS
            if RELATIONS[r][0] == _axis_between(position[subject], position[reference])
            and relation_holds(position[subject], position[reference], r)
        )
        lines.append(_statement(subject, relation, reference))

    candidates = {"yes": [], "no": []}
    for subject, reference in ((first, second), (second, first)):
        for relation in RELATIONS:
            answer = (
                "yes" if relation_holds(position[subject], position[reference], relation) else "no"
            )
            candidates[answer].append(_question(subject, relation, reference))
    half = questions_per_story // 2
    chosen = [(q, "yes") for q in rng.sample(candidates["yes"], half)]
    chosen += [(q, "no") for q in rng.sample(candidates["no"], half)]
    rng.shuffle(chosen)

    out = [f"{i} {line}" for i, line in enumerate(lines, start=1)]
    for i, (question, answer) in enumerate(chosen, start=len(lines) + 1):
        out.append(f"{i} {question}\t{answer}\t1 2")
    return "\n".join(out) + "\n"


def _axis_between(a: tuple[int, int], b: tuple[int, int]) -> int:
    return 0 if a[0] != b[0] else 1


def generate_task17(
    directory: str | Path,
    *,
    n_train_stories: int = 125,
    n_test_stories: int = 125,
    questions_per_story: int = 8,
    colour_probability: float = 0.8,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Write generated train and test files named like the official task-17 files.

    The defaults match the size of the official 1k set (1,000 questions per split).

    Args:
        directory: folder to write into (created if missing).
        n_train_stories: stories in ``qa17_positional-reasoning_train.txt``.
        n_test_stories: stories in ``qa17_positional-reasoning_test.txt``.
        questions_per_story: even number of questions per story, at most 8.
        colour_probability: chance that an object has a colour (see ``generate_story``).
        seed: seeds both files; the same seed always writes the same bytes.

    Returns:
        The paths of the train and test files.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths = []
    for name, n_stories in ((TRAIN_FILE, n_train_stories), (TEST_FILE, n_test_stories)):
        text = "".join(
            generate_story(rng, questions_per_story, colour_probability) for _ in range(n_stories)
        )
        path = directory / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1]


# ----------------------------------------------------------------------------- loader


@dataclass(frozen=True)
class Question:
    """One question with the story lines told before it.

    Attributes:
        context: the statements of its story that precede it, in order, as ``(id, text)``.
        text: the question sentence.
        answer: the answer word ("yes" or "no" in task 17).
        supporting: ids of the statements the answer rests on.
    """

    context: tuple[tuple[int, str], ...]
    text: str
    answer: str
    supporting: tuple[int, ...]


def parse_babi(lines: Iterable[str]) -> list[list[Question]]:
    """Parse bAbI text into stories, each a list of its questions.

    A line id of 1 starts a new story. Question lines hold the question, the answer and the
    supporting statement ids separated by tabs.

    Args:
        lines: the lines of a bAbI file.
    """
    stories: list[list[Question]] = []
    statements: list[tuple[int, str]] = []
    for lineno, raw in enumerate(lines, start=1):
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        number, _, rest = line.partition(" ")
        try:
            line_id = int(number)
        except ValueError:
            raise ValueError(f"line {lineno}: expected a line id, got {line!r}") from None
        if line_id == 1:
            statements = []
            stories.append([])
        elif not stories:
            raise ValueError(f"line {lineno}: the first story must start at id 1, got {line_id}")
        if "\t" in rest:
            fields = rest.split("\t")
            if len(fields) < 2:
                raise ValueError(f"line {lineno}: question without an answer: {line!r}")
            support = tuple(int(s) for s in fields[2].split()) if len(fields) > 2 else ()
            stories[-1].append(
                Question(tuple(statements), fields[0].strip(), fields[1].strip(), support)
            )
        else:
            statements.append((line_id, rest.strip()))
    return stories


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens without punctuation."""
    return _TOKEN.findall(text.lower())


def find_task17_files(data_dir: str | Path) -> tuple[Path, Path]:
    """Locate the task-17 train and test files under ``data_dir``.

    Looks in ``data_dir`` itself and in the archive's ``en/``, ``en-10k/`` and
    ``tasks_1-20_v1-2/en*/`` subfolders, first match wins.

    Args:
        data_dir: the folder given by ``--data-dir``.

    Raises:
        FileNotFoundError: naming every folder searched; nothing is downloaded.
    """
    root = Path(data_dir)
    folders = [root / sub for sub in _SUBFOLDERS]
    folders += sorted(p for p in root.glob("tasks_1-20_v1-2/en*") if p not in folders)
    for folder in folders:
        train = sorted(folder.glob("qa17_*_train.txt"))
        test = sorted(folder.glob("qa17_*_test.txt"))
        if train and test:
            return train[0], test[0]
    searched = "\n  ".join(str(f / "qa17_*_{train,test}.txt") for f in folders)
    raise FileNotFoundError(
        f"bAbI task 17 files not found; searched:\n  {searched}\n"
        "Nothing is downloaded: unpack the official bAbI archive (tasks_1-20_v1-2) there, "
        "or omit --data-dir to generate the task offline."
    )


@dataclass
class BabiSplit:
    """Index tensors of one split, left-padded with 0.

    Attributes:
        story: ``(n, story_len)`` token ids of the statements before each question.
        question: ``(n, question_len)`` token ids of the question.
        answer: ``(n,)`` index into ``BabiData.answers``.
    """

    story: torch.Tensor
    question: torch.Tensor
    answer: torch.Tensor

    def __len__(self) -> int:
        return int(self.answer.shape[0])


@dataclass
class BabiData:
    """A vectorised task: vocabulary, answer classes and the train/valid/test splits."""

    vocab: list[str]
    answers: list[str]
    train: BabiSplit
    valid: BabiSplit
    test: BabiSplit


def _vectorize(
    questions: Sequence[Question],
    word_index: dict[str, int],
    answer_index: dict[str, int],
    drop_words: Collection[str],
) -> BabiSplit:
    import torch

    unk = word_index[UNK]

    def ids(text: str) -> list[int]:
        return [word_index.get(w, unk) for w in tokenize(text) if w not in drop_words]

    stories = [[i for _, text in q.context for i in ids(text)] for q in questions]
    asked = [ids(q.text) for q in questions]

    def pad(rows: list[list[int]]) -> torch.Tensor:
        width = max((len(r) for r in rows), default=0)
        # Left padding keeps the last tokens at the end, where the LSTM's final state reads.
        return torch.tensor([[0] * (width - len(r)) + r for r in rows], dtype=torch.long)

    answers = torch.tensor([answer_index[q.answer] for q in questions], dtype=torch.long)
    return BabiSplit(pad(stories), pad(asked), answers)


def load_task17(
    data_dir: str | Path, *, valid_fraction: float = 0.1, drop_words: Collection[str] = ()
) -> BabiData:
    """Load the task-17 files from ``data_dir`` into tensors.

    The last ``valid_fraction`` of the training stories (whole stories, so no statement leaks
    between splits) becomes the validation split. The vocabulary covers every split, as the
    task's vocabulary is closed.

    Args:
        data_dir: folder holding ``qa17_*_train.txt`` and ``qa17_*_test.txt`` (or the archive's
            ``en/``, ``en-10k/`` or ``tasks_1-20_v1-2/en*/`` subfolders).
        valid_fraction: share of the training stories held out for validation, in (0, 1).
        drop_words: words left out of the token sequences. ``FUNCTION_WORDS`` shortens
            task-17 sequences about threefold without losing any information, as every
            sentence shares them.
    """
    if not 0 < valid_fraction < 1:
        raise ValueError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
    train_path, test_path = find_task17_files(data_dir)
    with open(train_path, encoding="utf-8") as f:
        train_stories = parse_babi(f)
    with open(test_path, encoding="utf-8") as f:
        test_stories = parse_babi(f)
    if len(train_stories) < 2:
        raise ValueError(f"{train_path} holds {len(train_stories)} stories; need at least 2")
    n_valid = min(len(train_stories) - 1, max(1, round(valid_fraction * len(train_stories))))
    splits = {
        "train": [q for s in train_stories[:-n_valid] for q in s],
        "valid": [q for s in train_stories[-n_valid:] for q in s],
        "test": [q for s in test_stories for q in s],
    }
    everything = [q for qs in splits.values() for q in qs]
    drop_words = frozenset(drop_words)
    words = sorted(
        {w for q in everything for _, t in q.context for w in tokenize(t)}
        | {w for q in everything for w in tokenize(q.text)}
    )
    words = [w for w in words if w not in drop_words]
    vocab = [PAD, UNK, *words]
    answers = sorted({q.answer for q in everything})
    word_index = {w: i for i, w in enumerate(vocab)}
    answer_index = {a: i for i, a in enumerate(answers)}
    return BabiData(
        vocab,
        answers,
        *(
            _vectorize(splits[k], word_index, answer_index, drop_words)
            for k in ("train", "valid", "test")
        ),
    )
