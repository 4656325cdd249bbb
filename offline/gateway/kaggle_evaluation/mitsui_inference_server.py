"""`MitsuiInferenceServer(predict)`: the class a Mitsui kernel script builds, as on Kaggle.

predict(test, label_lags_1_batch, label_lags_2_batch, label_lags_3_batch, label_lags_4_batch)
receives polars DataFrames and returns a 1-row polars or pandas DataFrame. `serve()` answers the
kit's gateway process; `run_local_gateway(data_paths)` runs the gateway loop in this process
(values still go through Arrow IPC both ways) and writes submission.parquet into the working
directory. Data path: data_paths[0], else Kaggle's input directory (as Kaggle's gateway).
"""

from __future__ import annotations

import sys

from .core.templates import InferenceServer
from .mitsui_gateway import MitsuiGateway


class MitsuiInferenceServer(InferenceServer):
    def _get_gateway_for_test(self, data_paths=None, file_share_dir=None, *args, **kwargs) -> MitsuiGateway:
        return MitsuiGateway(data_paths, send=self.local_send)

    def run_local_gateway(self, data_paths=None, file_share_dir=None, *args, **kwargs) -> None:
        """Run every batch through predict here; a failure raises GatewayRuntimeError (as on Kaggle)."""
        gateway = self._get_gateway_for_test(data_paths, file_share_dir)
        try:
            submission = gateway.run()
        finally:
            self.listener.close()
        kinds: dict[str, int] = {}
        for _, kind, _ in gateway.warnings:
            kinds[kind] = kinds.get(kind, 0) + 1
        for kind, n in kinds.items():
            first = next(f"date_id {d}: {m}" for d, k, m in gateway.warnings if k == kind)
            print(f"kit warning [{kind}] on {n} day(s), first {first}", file=sys.stderr)
        print(f"wrote submission.parquet ({submission.height} rows)", file=sys.stderr)
