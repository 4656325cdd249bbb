"""The built-in synthetic market: a competition directory in Kaggle's layout with planted effects and an oracle."""

from offline.data.synthetic.directory import (
    ORACLE_FILE,
    ORACLE_LATENT_FILE,
    REGIMES_FILE,
    TRUTH_FILE,
    SynthConfig,
    filtered_oracle,
    generate,
    naive_predictions,
    write_synthetic,
)

__all__ = [
    "ORACLE_FILE",
    "ORACLE_LATENT_FILE",
    "REGIMES_FILE",
    "TRUTH_FILE",
    "SynthConfig",
    "filtered_oracle",
    "generate",
    "naive_predictions",
    "write_synthetic",
]
