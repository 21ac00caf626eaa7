"""Swift-Hyperband pruner and its bracket and rung bookkeeping."""

from optuna_qsvr.pruners._schedule import Rung, Schedule
from optuna_qsvr.pruners._swift_hyperband import SwiftHyperbandPruner, fit_records

__all__ = ["Rung", "Schedule", "SwiftHyperbandPruner", "fit_records"]
