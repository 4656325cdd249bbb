"""The inference server template: register endpoints, then `serve()` or `run_local_gateway()`.

serve() listens on 127.0.0.1 at $KAGGLE_KIT_PORT (0 or unset = a free port), writes the port it
got to $KAGGLE_KIT_PORT_FILE (if set, atomically) so the gateway can find it, accepts one
gateway connection and answers its calls until the gateway says `shutdown` or disconnects.
An endpoint's exception is printed to stderr and returned to the gateway with its traceback.
"""

from __future__ import annotations

import os
import socket
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import relay

PORT_ENV = "KAGGLE_KIT_PORT"
PORT_FILE_ENV = "KAGGLE_KIT_PORT_FILE"


class InferenceServer:
    """Answers the gateway's calls with the user's functions, keyed by their __name__."""

    def __init__(self, *endpoint_listeners: Callable[..., Any]):
        if not endpoint_listeners:
            raise ValueError("Must pass at least one endpoint listener, e.g. `predict`")
        for fn in endpoint_listeners:  # Kaggle's define_server checks these at construction
            if not callable(fn):
                raise ValueError(f"Endpoint listeners passed to `serve` must be functions, got {type(fn)}")
            if getattr(fn, "__name__", "<lambda>") == "<lambda>":
                raise ValueError("Functions passed as endpoint listeners must be named")
        self.endpoints = {fn.__name__: fn for fn in endpoint_listeners}
        # like Kaggle's server, the port is bound when the server is built, not when it starts
        self.listener = socket.create_server(("127.0.0.1", int(os.environ.get(PORT_ENV) or 0)))

    def call(self, endpoint: str, args: list[Any]) -> tuple[dict, list[bytes]]:
        """Run one call and encode its answer (or its failure) as a relay message."""
        fn = self.endpoints.get(endpoint)
        if fn is None:
            return {
                "ok": False,
                "error_type": "SERVER_MISSING_ENDPOINT",
                "error": f"Server did not register a listener for {endpoint}",
            }, []
        try:
            result = fn(*args)
        except Exception as exc:
            tb = traceback.format_exc()
            print(tb, file=sys.stderr, flush=True)
            # Kaggle's detail is the exception's message only (gRPC "Exception calling application: ...")
            return {
                "ok": False,
                "error_type": "SERVER_RAISED_EXCEPTION",
                "error": str(exc),
                "traceback": tb,
            }, []
        try:
            desc, blobs = relay.encode_value(result)
        except relay.SerializationError as exc:
            print(f"the {endpoint} result could not be serialized: {exc}", file=sys.stderr, flush=True)
            return {"ok": False, "error_type": "SERVER_RAISED_EXCEPTION", "error": str(exc)}, []
        return {"ok": True, "value": desc}, blobs

    def serve(self) -> None:
        """Listen for the gateway and answer until it shuts the server down."""
        listener = self.listener
        port = listener.getsockname()[1]
        if os.environ.get(PORT_FILE_ENV):
            target = Path(os.environ[PORT_FILE_ENV])
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_text(str(port))
            os.replace(tmp, target)
        conn, _ = listener.accept()
        listener.close()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            while True:
                try:
                    header, blobs = relay.recv_message(conn)
                except relay.ConnectionClosed:
                    return
                op = header.get("op")
                if op == "ping":
                    relay.send_message(conn, {"ok": True, "endpoints": sorted(self.endpoints)})
                elif op == "shutdown":
                    relay.send_message(conn, {"ok": True})
                    return
                elif op == "call":
                    try:
                        args = relay.decode_values(header["args"], blobs)
                    except Exception as exc:
                        relay.send_message(
                            conn,
                            {
                                "ok": False,
                                "error_type": "SERVER_RAISED_EXCEPTION",
                                "error": f"cannot decode the batch: {exc}",
                            },
                        )
                        continue
                    reply, out = self.call(header["endpoint"], args)
                    relay.send_message(conn, reply, out)
                else:
                    relay.send_message(
                        conn, {"ok": False, "error_type": "UNSPECIFIED", "error": f"unknown op {op!r}"}
                    )

    def local_send(self, endpoint: str, *args: Any) -> Any:
        """One call in this process, serialized both ways exactly as over the socket."""
        descs, blobs = relay.encode_values(args)
        reply, out = self.call(endpoint, relay.decode_values(descs, blobs))
        if not reply["ok"]:
            raise relay.RemoteError(reply["error_type"], reply["error"], reply.get("traceback"))
        return relay.decode_value(reply["value"], out)
