"""Transport between the gateway and the inference server: framed messages over a local TCP socket.

Kaggle's relay is gRPC; ours is a plain socket on 127.0.0.1 with the same effect that matters to a
kernel: every value crosses a process boundary serialized, so what cannot be serialized fails.
A message is a JSON header frame followed by `n_blobs` binary frames; every frame is an 8-byte
big-endian length and its bytes. DataFrames travel as Arrow IPC streams (polars `write_ipc`,
pandas through pyarrow), small values as JSON, numeric numpy arrays as raw bytes. Anything else
(a polars Object column, a pandas column of arbitrary Python objects, a custom class) raises
`SerializationError`. `roundtrip` applies the same encoding in one process (run_local_gateway).
"""

from __future__ import annotations

import io
import json
import math
import socket
import struct
import time
from typing import Any

import numpy as np

_LEN = struct.Struct(">Q")
_MAX_FRAME = 1 << 34


class SerializationError(TypeError):
    """A value that the transport cannot carry (Kaggle's gRPC relay would reject it too)."""


class ConnectionClosed(ConnectionError):
    """The other side closed the connection (for the gateway: the kernel process went away)."""


class CallTimeout(TimeoutError):
    """No answer before the deadline."""


# ---------------------------------------------------------------- values <-> (descriptor, blobs)


# Kaggle's relay refuses these polars types (Enum is "unstable" there): the answer fails to serialize.
POLARS_DENYLIST = ("Enum", "Object", "Unknown")


def _polars_ipc(frame: Any) -> bytes:
    banned = sorted({str(t.base_type()) for t in frame.dtypes} & set(POLARS_DENYLIST))
    if banned:
        raise SerializationError(f"Unsupported Polars data type(s): {', '.join(banned)}")
    buf = io.BytesIO()
    try:
        frame.write_ipc(buf)
    except Exception as exc:  # polars raises ComputeError for Object columns
        raise SerializationError(f"polars DataFrame cannot be written as Arrow IPC: {exc}") from None
    return buf.getvalue()


def _pandas_ipc(frame: Any) -> bytes:
    import pyarrow as pa

    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError) as exc:
        raise SerializationError(f"pandas DataFrame cannot be converted to Arrow: {exc}") from None
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _json_safe(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, float):
        return True
    if isinstance(value, list | tuple):
        return all(_json_safe(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_safe(v) for k, v in value.items())
    return False


def encode_value(value: Any) -> tuple[dict, list[bytes]]:
    """Serialize one value to a JSON-able descriptor and its binary frames."""
    import polars as pl

    if isinstance(value, pl.DataFrame):
        return {"kind": "polars"}, [_polars_ipc(value)]
    if isinstance(value, pl.Series):
        return {"kind": "polars_series", "name": value.name}, [_polars_ipc(value.to_frame())]
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is always present on Kaggle and here
        pd = None
    if pd is not None and isinstance(value, pd.DataFrame):
        if not all(isinstance(c, str) for c in value.columns):
            raise SerializationError(
                f"pandas DataFrame column names must be strings, got {list(value.columns)[:5]}"
            )
        return {"kind": "pandas"}, [_pandas_ipc(value)]
    if pd is not None and isinstance(value, pd.Series):
        name = value.name if isinstance(value.name, str) else None
        return {"kind": "pandas_series", "name": name}, [_pandas_ipc(value.to_frame(name or "__series__"))]
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise SerializationError(f"numpy array of dtype {value.dtype} cannot be serialized")
        return {"kind": "ndarray", "dtype": value.dtype.str, "shape": list(value.shape)}, [
            np.ascontiguousarray(value).tobytes()
        ]
    if isinstance(value, np.generic):  # kept a numpy scalar, as Kaggle's relay does
        if value.dtype.kind not in "biuf":
            raise SerializationError(f"numpy scalar of dtype {value.dtype} cannot be serialized")
        return {"kind": "npscalar", "dtype": value.dtype.str}, [value.tobytes()]
    if _json_safe(value):
        return {"kind": "json", "value": _to_json(value)}, []
    raise SerializationError(
        f"values of type {type(value).__module__}.{type(value).__qualname__} cannot be serialized"
    )


def _to_json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    if isinstance(value, list | tuple):
        return (
            {"__tuple__": [_to_json(v) for v in value]}
            if isinstance(value, tuple)
            else [_to_json(v) for v in value]
        )
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"__float__"}:
            return float(value["__float__"])
        if set(value) == {"__tuple__"}:
            return tuple(_from_json(v) for v in value["__tuple__"])
        return {k: _from_json(v) for k, v in value.items()}
    return value


def decode_value(desc: dict, blobs: list[bytes]) -> Any:
    """Inverse of `encode_value`."""
    kind = desc["kind"]
    if kind == "json":
        return _from_json(desc["value"])
    if kind in ("polars", "polars_series"):
        import polars as pl

        frame = pl.read_ipc(io.BytesIO(blobs[0]))
        return frame if kind == "polars" else frame.to_series(0)
    if kind in ("pandas", "pandas_series"):
        import pyarrow as pa

        frame = pa.ipc.open_stream(io.BytesIO(blobs[0])).read_all().to_pandas()
        if kind == "pandas":
            return frame
        series = frame.iloc[:, 0]
        return series.rename(desc.get("name"))
    if kind == "npscalar":
        return np.frombuffer(blobs[0], dtype=np.dtype(desc["dtype"]))[0]
    if kind == "ndarray":
        return np.frombuffer(blobs[0], dtype=np.dtype(desc["dtype"])).reshape(desc["shape"]).copy()
    raise SerializationError(f"unknown value kind {kind!r}")


def encode_values(values: tuple | list) -> tuple[list[dict], list[bytes]]:
    descs, blobs = [], []
    for v in values:
        d, b = encode_value(v)
        d["n_blobs"] = len(b)
        descs.append(d)
        blobs.extend(b)
    return descs, blobs


def decode_values(descs: list[dict], blobs: list[bytes]) -> list[Any]:
    out, i = [], 0
    for d in descs:
        n = d["n_blobs"]
        out.append(decode_value(d, blobs[i : i + n]))
        i += n
    return out


def roundtrip(value: Any) -> Any:
    """Serialize and deserialize, as a value crossing the process boundary would be."""
    desc, blobs = encode_value(value)
    return decode_value(desc, blobs)


# ---------------------------------------------------------------- framing


def send_message(sock: socket.socket, header: dict, blobs: list[bytes] = ()) -> None:
    header = {**header, "n_blobs": len(blobs)}
    payload = json.dumps(header).encode()
    parts = [_LEN.pack(len(payload)), payload]
    for b in blobs:
        parts += [_LEN.pack(len(b)), b]
    sock.sendall(b"".join(parts))


def _recv_exact(sock: socket.socket, n: int, deadline: float | None) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CallTimeout("deadline passed")
            sock.settimeout(remaining)
        else:
            sock.settimeout(None)
        try:
            k = sock.recv_into(view[got:], n - got)
        except TimeoutError:
            raise CallTimeout("deadline passed") from None
        except OSError as exc:
            raise ConnectionClosed(f"connection lost: {exc}") from None
        if k == 0:
            raise ConnectionClosed("connection closed by the other side")
        got += k
    return bytes(buf)


def recv_message(sock: socket.socket, deadline: float | None = None) -> tuple[dict, list[bytes]]:
    """Read one message; `deadline` is a time.monotonic() value (None waits forever)."""
    (n,) = _LEN.unpack(_recv_exact(sock, _LEN.size, deadline))
    if n > _MAX_FRAME:
        raise ConnectionClosed(f"frame of {n} bytes is not a kit message")
    header = json.loads(_recv_exact(sock, n, deadline))
    blobs = []
    for _ in range(header.get("n_blobs", 0)):
        (m,) = _LEN.unpack(_recv_exact(sock, _LEN.size, deadline))
        blobs.append(_recv_exact(sock, m, deadline))
    return header, blobs


# ---------------------------------------------------------------- client


class Client:
    """The gateway's end: connect to the inference server, call endpoints with a deadline."""

    def __init__(self, port: int, host: str = "127.0.0.1", connect_timeout: float = 5.0):
        self.sock = socket.create_connection((host, port), timeout=connect_timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def ping(self, timeout: float | None) -> dict:
        send_message(self.sock, {"op": "ping"})
        header, _ = recv_message(self.sock, None if timeout is None else time.monotonic() + timeout)
        return header

    def send(self, endpoint: str, *args: Any, timeout: float | None = None) -> Any:
        """Call `endpoint(*args)` on the server; server-side failures come back as `RemoteError`."""
        descs, blobs = encode_values(args)
        send_message(self.sock, {"op": "call", "endpoint": endpoint, "args": descs}, blobs)
        header, out = recv_message(self.sock, None if timeout is None else time.monotonic() + timeout)
        if not header.get("ok"):
            raise RemoteError(
                header.get("error_type", "SERVER_RAISED_EXCEPTION"),
                header.get("error", ""),
                header.get("traceback"),
            )
        return decode_value(header["value"], out)

    def shutdown(self, timeout: float = 5.0) -> None:
        try:
            send_message(self.sock, {"op": "shutdown"})
            recv_message(self.sock, time.monotonic() + timeout)
        except (OSError, ConnectionClosed, CallTimeout):
            pass
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class RemoteError(Exception):
    """The server answered with a failure (its endpoint raised, or its answer was not serializable)."""

    def __init__(self, error_type: str, message: str, traceback: str | None = None):
        self.error_type, self.message, self.traceback = error_type, message, traceback
        super().__init__(f"{error_type}: {message}")
