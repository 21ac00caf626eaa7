# The pruner lives in the optuna-qsvr package (requirements.txt); this package only exposes it.
from optuna_qsvr import SwiftHyperbandPruner


__all__ = ["SwiftHyperbandPruner"]
