"""Offline side of the kit: data, training, ETF pipeline, gateway, packaging and submission."""

import os

__version__ = "0.1.0"

# LightGBM's OpenMP threads (libgomp) spin for ~300k iterations at every barrier before sleeping. On
# a machine where another process holds a core, the spinning thread starves its partner, and the
# pooled candidate ran 6x slower instead of 2x. A short spin keeps quiet runs as fast (set here,
# before lightgbm loads libgomp; a value the user set wins).
GOMP_SPINCOUNT = "2000"
os.environ.setdefault("GOMP_SPINCOUNT", GOMP_SPINCOUNT)
