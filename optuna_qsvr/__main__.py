"""``python -m optuna_qsvr``: the same command line as ``optuna-qsvr``."""

from __future__ import annotations

from optuna_qsvr._cli import main

raise SystemExit(main())
