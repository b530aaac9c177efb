"""Hyperparameter tuning on Optuna, every trial a tracked child run.

```python
import loopml

result = loopml.tune(lambda p: (p["x"] - 2) ** 2, search_space={"x": ("float", -10, 10)},
                     n_trials=50, sampler="tpe", seed=0)
result.best_params, result.parent_run_id
```
"""

from __future__ import annotations

from loopml.tuning._tune import SAMPLERS, TuneResult, tune

__all__ = ["SAMPLERS", "TuneResult", "tune"]
