"""The sampler extension: bracket-aware and forecast-aware wrapping of any sampler."""

from optuna_qsvr.samplers._swift import SwiftSampler

__all__ = ["SwiftSampler"]
