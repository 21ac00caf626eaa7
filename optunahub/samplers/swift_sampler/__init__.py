# The sampler lives in the optuna-qsvr package (requirements.txt); this package only exposes it.
from optuna_qsvr import SwiftSampler


__all__ = ["SwiftSampler"]
