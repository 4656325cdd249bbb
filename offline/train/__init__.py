"""Two-stage engine: regime classifier -> out-of-fold probability -> 424 per-target LightGBM regressors."""
