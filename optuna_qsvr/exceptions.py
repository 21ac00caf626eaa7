"""The exceptions optuna-qsvr raises, importable without loading scikit-learn or dimod."""


class PredictorError(RuntimeError):
    """A predictor could not be fitted or could not forecast."""


class NotEnoughCurvesError(PredictorError, ValueError):
    """Too few learning curves to fit a predictor."""


class AnnealerError(PredictorError):
    """The annealer failed, was unreachable, or returned no usable sample."""


class AnnealerTimeoutError(AnnealerError, TimeoutError):
    """The annealer did not answer within the allowed time."""


class ModelFormatError(PredictorError, ValueError):
    """A serialised predictor is malformed, tampered with, or of an unknown version."""


class RecordFormatError(ValueError):
    """A stored record does not follow the format; the message names the record and field."""
