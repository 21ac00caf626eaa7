"""Predictor classes by name: how a stored model's ``kind`` becomes the class that loads it."""

from __future__ import annotations

import threading
from typing import Any, TypeVar

from optuna_qsvr.predictors._base import BasePredictor, ModelFormatError, parse_model_json

__all__ = [
    "load_predictor",
    "make_predictor",
    "predictor_class",
    "register_predictor",
    "registered_predictors",
]

_P = TypeVar("_P", bound=type[BasePredictor])

_registry: dict[str, type[BasePredictor]] = {}
_lock = threading.Lock()


def register_predictor(cls: _P) -> _P:
    """Register a predictor class under its ``name``, so that stored models of it load.

    Usable as a class decorator. A study stores every fitted predictor as ``to_json()`` with
    ``type(predictor).name``; :func:`predictor_class` maps that name back to the class whose
    ``from_json`` rebuilds it, in any worker that has imported the class.

    Args:
        cls: a :class:`~optuna_qsvr.predictors.BasePredictor` subclass whose class attribute
            ``name`` is a non-empty string not taken by another class. Registering the same
            class again is a no-op; so is re-running its definition (same module and qualified
            name, e.g. a notebook cell), which replaces the old class.

    Returns:
        ``cls``, unchanged.

    Raises:
        TypeError: If ``cls`` is not a ``BasePredictor`` subclass.
        ValueError: If ``cls.name`` is empty or belongs to another class.

    Example:

        .. code-block:: python

            import numpy as np
            from optuna_qsvr.predictors import BasePredictor, register_predictor


            @register_predictor
            class LastValue(BasePredictor):
                name = "last-value"

                def fit(self, curves, targets, params=None):
                    return self

                def predict(self, curves, params=None):
                    last = np.asarray(curves, dtype=float)[:, -1]
                    return last, np.full(last.shape, np.nan)

                def to_json(self):
                    return "{}"

                @classmethod
                def from_json(cls, text):
                    return cls()
    """
    if not (isinstance(cls, type) and issubclass(cls, BasePredictor)):
        raise TypeError(f"only BasePredictor subclasses can be registered, got {cls!r}")
    name = cls.name
    if not isinstance(name, str) or not name.strip():
        raise ValueError(
            f"{cls.__qualname__}.name must be a non-empty str to register it, got {name!r}"
        )
    with _lock:
        current = _registry.get(name)
        if current is not None and current is not cls and not _same_definition(current, cls):
            raise ValueError(
                f"predictor name {name!r} is already registered to "
                f"{current.__module__}.{current.__qualname__}"
            )
        _registry[name] = cls
    return cls


def _same_definition(a: type, b: type) -> bool:
    return (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


def registered_predictors() -> tuple[str, ...]:
    """The registered predictor names, sorted."""
    with _lock:
        return tuple(sorted(_registry))


def predictor_class(name: str) -> type[BasePredictor]:
    """The predictor class registered under ``name``.

    Args:
        name: a registry name, e.g. the ``kind`` stored with a fitted model.

    Returns:
        The class; its ``from_json`` loads models stored under ``name``.

    Raises:
        ModelFormatError: If no class is registered under ``name``: a stored model of an
            unknown kind is rejected (and refitted), not trusted.

    Example:

        .. code-block:: python

            from optuna_qsvr.predictors import predictor_class

            assert predictor_class("svr").__name__ == "SVRPredictor"
    """
    with _lock:
        cls = _registry.get(name) if isinstance(name, str) else None
        if cls is None:
            raise ModelFormatError(
                f"unknown predictor kind {name!r}; registered: {', '.join(sorted(_registry))}"
            )
    return cls


def make_predictor(name: str, **kwargs: Any) -> BasePredictor:
    """An unfitted predictor of the class registered under ``name``.

    Args:
        name: a registry name, e.g. ``"svr"`` or ``"qsvr"``.
        kwargs: the class's constructor arguments (``features``, ``residual``, ...).

    Raises:
        ModelFormatError: If ``name`` is not registered.

    Example:

        .. code-block:: python

            from optuna_qsvr.predictors import make_predictor

            predictor = make_predictor("svr", features=("curve", "diff1"), residual=True)
    """
    return predictor_class(name)(**kwargs)


def load_predictor(text: str, name: str | None = None) -> BasePredictor:
    """Rebuild a fitted predictor from its JSON, whatever its registered class.

    Args:
        text: the output of a predictor's ``to_json()``.
        name: the registry name the model was stored under. ``None`` reads it from the
            document's ``"kind"`` field (which the built-in predictors write); either way the
            class's ``from_json`` then validates the whole document.

    Returns:
        The fitted predictor.

    Raises:
        ModelFormatError: If ``text`` is malformed or names no registered class.

    Example:

        .. code-block:: python

            import numpy as np
            from optuna_qsvr.predictors import SVRPredictor, load_predictor

            curves = np.linspace(0.1, 1.0, 40).reshape(10, 4)
            fitted = SVRPredictor().fit(curves, curves[:, -1] + 0.1)
            again = load_predictor(fitted.to_json())
    """
    if name is None:
        # Parsed as hostile input like any record; from_json then parses it again in full.
        name = parse_model_json(text).get("kind")
        if not isinstance(name, str):
            raise ModelFormatError(
                f"predictor record has no registered kind (got {name!r}); "
                "pass the name it was stored under"
            )
    cls = predictor_class(name)
    try:
        predictor = cls.from_json(text)
    except ModelFormatError:
        raise
    except (KeyError, IndexError, TypeError, ValueError) as err:
        # A third-party from_json that trips over a bad record must still reject it cleanly.
        raise ModelFormatError(
            f"{cls.__qualname__}.from_json rejected the record: {type(err).__name__}: {err}"
        ) from err
    if not isinstance(predictor, cls):
        raise TypeError(
            f"{cls.__qualname__}.from_json returned {type(predictor).__name__}, not {name!r}"
        )
    return predictor
