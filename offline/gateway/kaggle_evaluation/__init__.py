"""The kit's stand-in for Kaggle's `kaggle_evaluation` package (same public interface, own code).

A kernel script does `import kaggle_evaluation.mitsui_inference_server`, builds
`MitsuiInferenceServer(predict)` and calls `serve()` (when KAGGLE_IS_COMPETITION_RERUN is set)
or `run_local_gateway(data_paths)`. The local gateway (`python -m offline gateway`) puts this
package on the kernel process's PYTHONPATH. Only the standard library, numpy, polars, pandas and
pyarrow are imported here; internal imports are relative so the package also works as
`offline.gateway.kaggle_evaluation` inside the gateway process.
"""
