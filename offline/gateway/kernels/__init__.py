"""Built-in kernels: plain scripts in the Kaggle notebook convention, run by the gateway in their own process.

They import `kaggle_evaluation` (only importable inside a kernel process), so never import them from `offline`.
"""
