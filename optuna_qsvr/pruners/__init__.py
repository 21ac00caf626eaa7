"""Swift-Hyperband pruner and its parts: the bracket schedule, the decision rules, and the
shared model store.

In the paper mode, the decision rules are a list whose order is their precedence: the first
rule that keeps a trial decides. Pass your own chain, for instance Baker et al.'s probabilistic
rule before the rung's top ``1/eta``:

.. code-block:: python

    import optuna
    from optuna_qsvr.pruners import (
        ConfidenceRule,
        RungTopRule,
        SwiftHyperbandPruner,
        ThresholdRule,
    )

    pruner = SwiftHyperbandPruner(
        max_resource=27,
        mode="paper",
        rules=[ThresholdRule(), ConfidenceRule(0.95), RungTopRule()],
    )
    assert [rule.name for rule in pruner.rules] == ["threshold", "confidence", "rung-top"]
    study = optuna.create_study(pruner=pruner)
"""

from optuna_qsvr.pruners._model_store import ModelStore
from optuna_qsvr.pruners._rules import (
    ChanceRule,
    ConfidenceRule,
    DecisionContext,
    DecisionRule,
    RankRule,
    RescueRule,
    RungTopRule,
    ThresholdRule,
    Verdict,
    apply_rules,
    default_rules,
)
from optuna_qsvr.pruners._schedule import Rung, Schedule
from optuna_qsvr.pruners._swift_hyperband import SwiftHyperbandPruner

__all__ = [
    "ChanceRule",
    "ConfidenceRule",
    "DecisionContext",
    "DecisionRule",
    "ModelStore",
    "RankRule",
    "RescueRule",
    "Rung",
    "RungTopRule",
    "Schedule",
    "SwiftHyperbandPruner",
    "ThresholdRule",
    "Verdict",
    "apply_rules",
    "default_rules",
]
