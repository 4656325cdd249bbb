"""Local evaluation gateway (Kaggle's evaluation API emulated) and the competition metric.

`offline.gateway.runner.run_gateway` runs a kernel script as Kaggle would and scores it;
`offline.metric` is the score; `kaggle_evaluation/` is what the kernel process imports.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    # `from offline.gateway import run_gateway` without importing the runner for metric-only users
    if name == "run_gateway":
        from offline.gateway.runner import run_gateway

        return run_gateway
    raise AttributeError(name)
