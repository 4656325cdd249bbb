"""A fake Kaggle API on localhost for end-to-end tests of `make submit` with the real `kaggle` CLI.

It answers the JSON RPC calls (POST /api/v1/<service>/<Method>) and the blob upload PUTs that the
kaggle 2.2.4 CLI makes for `datasets status/create/version`, `kernels push/status` and
`competitions submit -k`, records every request, steps datasets through pending -> ready and kernel
runs through queued -> running -> complete, and can be told to fail (401, 404, 429, failed upload).

Routing: the 2.2.4 CLI ignores KAGGLE_API_ENVIRONMENT=TEST (it builds its client with PROD unless
it sees LOCALHOST, which means http://localhost on port 80). `cli_env()` therefore sets
KAGGLE_API_ENVIRONMENT=LOCALHOST and points HTTP_PROXY at this server, which accepts both
proxy-style absolute URLs and plain paths, so no fixed or privileged port is needed.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

API_PREFIX = "/api/v1/"
UPLOAD_PREFIX = "/upload/"
ERROR_MESSAGES = {
    400: "Bad request",
    401: "Unauthenticated",
    403: "Permission denied",
    404: "Not found",
    429: "Too many requests",
    500: "Internal error",
}


@dataclass
class Request:
    """One request as the server saw it: `rpc` is 'Service/Method' (or 'upload'), `body` the JSON."""

    method: str
    rpc: str
    body: dict | None = None
    data: bytes = b""
    authorized: bool = False


@dataclass
class Dataset:
    owner: str
    slug: str
    title: str
    is_private: bool
    license_name: str
    versions: list[dict[str, bytes]] = field(default_factory=list)  # files of each version, by name
    notes: list[str] = field(default_factory=list)
    pending_polls: int = 0


@dataclass
class Kernel:
    owner: str
    slug: str
    versions: list[dict] = field(default_factory=list)  # the SaveKernel request body of each version
    polls: int = 0


class FakeKaggle:
    """The fake API: start() it, point the CLI at it with cli_env(), then inspect `requests` and state."""

    def __init__(
        self,
        username: str = "alice",
        key: str = "0123456789abcdef",
        pending_polls: int = 2,
        running_polls: int = 2,
    ):
        self.username, self.key = username, key
        self.pending_polls, self.running_polls = pending_polls, running_polls
        self.requests: list[Request] = []
        self.uploads: dict[str, tuple[str, bytes]] = {}  # token -> (file name, bytes)
        self.datasets: dict[str, Dataset] = {}
        self.kernels: dict[str, Kernel] = {}
        self.submissions: list[dict] = []
        self.errors: dict[str, int] = {}  # method name ('CreateDataset', ...) -> HTTP status to answer
        self.fail_uploads = False
        self.kernel_failure: str | None = None  # failure message of every kernel run, when set
        self.echo_credentials = False  # put the offered user:key into injected error messages
        self._lock = threading.Lock()
        self._tokens = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self, port: int = 0) -> FakeKaggle:
        """Serve on 127.0.0.1:port (0: any free port) in a background thread."""
        try:
            self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        except OSError as exc:
            raise RuntimeError(f"fake Kaggle API cannot listen on 127.0.0.1:{port}: {exc}") from exc
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-kaggle", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeKaggle:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli_env(
        self, base: dict[str, str], home: str, username: str | None = None, key: str | None = None
    ) -> dict[str, str]:
        """Environment for the real kaggle CLI: credentials, an empty HOME/config, traffic to this server."""
        env = {
            k: v
            for k, v in base.items()
            if not k.upper().startswith("KAGGLE_") and "PROXY" not in k.upper() and k not in ("VERBOSE",)
        }
        env.update(
            {
                "HOME": home,
                "KAGGLE_CONFIG_DIR": f"{home}/.kaggle",
                "TMPDIR": home,
                "KAGGLE_USERNAME": username or self.username,
                "KAGGLE_KEY": key or self.key,
                "KAGGLE_API_ENVIRONMENT": "LOCALHOST",
                "HTTP_PROXY": self.base_url,
                "http_proxy": self.base_url,
                "NO_PROXY": "",
                "no_proxy": "",
            }
        )
        return env

    # -- queries for tests -------------------------------------------------------------------------

    def calls(self, method: str) -> list[Request]:
        """Recorded requests whose RPC method (or 'upload') is `method`, in order."""
        with self._lock:
            return [r for r in self.requests if r.rpc.rsplit("/", 1)[-1] == method]

    def rpc_names(self) -> list[str]:
        with self._lock:
            return [r.rpc.rsplit("/", 1)[-1] for r in self.requests]

    # -- request handling --------------------------------------------------------------------------

    def _authorized(self, header: str | None) -> bool:
        expected = base64.b64encode(f"{self.username}:{self.key}".encode()).decode()
        return header == f"Basic {expected}"

    def handle_rpc(self, rpc: str, body: dict, auth_header: str | None) -> tuple[int, dict]:
        method = rpc.rsplit("/", 1)[-1]
        authorized = self._authorized(auth_header)
        # Like a careless server, error texts may echo what was offered, so tests prove the client scrubs it.
        offered = base64.b64decode((auth_header or "Basic ").split(" ", 1)[1] or b"").decode(errors="replace")
        with self._lock:
            self.requests.append(Request("POST", rpc, body=body, authorized=authorized))
            if not authorized:
                return 401, _error(401, f"Unauthenticated: credentials {offered!r} were rejected")
            if method in self.errors:
                status = self.errors[method]
                echo = f" for {offered!r} (Authorization: {auth_header})" if self.echo_credentials else ""
                return status, _error(status, f"{ERROR_MESSAGES.get(status, 'Error')} ({method}){echo}")
            handler = getattr(self, f"_rpc_{method}", None)
            if handler is None:
                return 404, _error(404, f"Not found: no such method {rpc}")
            return handler(body)

    def handle_upload(self, token: str, data: bytes) -> int:
        with self._lock:
            self.requests.append(Request("PUT", "upload", data=data, body={"token": token}))
            if self.fail_uploads:
                return 500
            if token not in self.uploads:
                return 404
            name, _ = self.uploads[token]
            self.uploads[token] = (name, data)
            return 200

    def _files(self, files: list[dict]) -> dict[str, bytes] | None:
        out = {}
        for f in files:
            if f.get("token") not in self.uploads:
                return None
            name, data = self.uploads[f["token"]]
            out[name] = data
        return out

    def _rpc_StartBlobUpload(self, body: dict) -> tuple[int, dict]:
        token = f"blob-{next(self._tokens)}"
        self.uploads[token] = (body.get("name", ""), b"")
        return 200, {"token": token, "createUrl": f"{self.base_url}{UPLOAD_PREFIX}{token}"}

    def _rpc_GetDatasetStatus(self, body: dict) -> tuple[int, dict]:
        ds = self.datasets.get(f"{body.get('ownerSlug')}/{body.get('datasetSlug')}")
        if ds is None:
            return 404, _error(404, "Not found")
        if ds.pending_polls > 0:
            ds.pending_polls -= 1
            return 200, {"status": "BLOBS_RECEIVED"}
        return 200, {"status": "READY"}

    def _rpc_GetDataset(self, body: dict) -> tuple[int, dict]:
        ref = f"{body.get('ownerSlug')}/{body.get('datasetSlug')}"
        ds = self.datasets.get(ref)
        if ds is None:
            return 404, _error(404, "Not found")
        return 200, {
            "ref": ref,
            "title": ds.title,
            "isPrivate": ds.is_private,
            "currentVersionNumber": len(ds.versions),
        }

    def _rpc_CreateDataset(self, body: dict) -> tuple[int, dict]:
        ref = f"{body.get('ownerSlug')}/{body.get('slug')}"
        if ref in self.datasets:
            return 200, {"status": "error", "error": f"dataset {ref} already exists"}
        files = self._files(body.get("files", []))
        if files is None:
            return 400, _error(400, "Bad request: unknown upload token")
        self.datasets[ref] = Dataset(
            body["ownerSlug"],
            body["slug"],
            body.get("title", ""),
            bool(body.get("isPrivate", False)),
            body.get("licenseName", ""),
            versions=[files],
            notes=[""],
            pending_polls=self.pending_polls,
        )
        return 200, {"ref": ref, "url": f"http://localhost/datasets/{ref}", "status": "ok"}

    def _rpc_CreateDatasetVersion(self, body: dict) -> tuple[int, dict]:
        ref = f"{body.get('ownerSlug')}/{body.get('datasetSlug')}"
        ds = self.datasets.get(ref)
        if ds is None:
            return 404, _error(404, "Not found")
        inner = body.get("body", {})
        files = self._files(inner.get("files", []))
        if files is None:
            return 400, _error(400, "Bad request: unknown upload token")
        ds.versions.append(files)
        ds.notes.append(inner.get("versionNotes", ""))
        ds.pending_polls = self.pending_polls
        return 200, {"ref": ref, "url": f"http://localhost/datasets/{ref}", "status": "ok"}

    def _rpc_SaveKernel(self, body: dict) -> tuple[int, dict]:
        ref = body.get("slug") or ""
        if ref.count("/") != 1:
            return 400, _error(400, "Bad request: slug must be owner/kernel")
        owner, slug = ref.split("/")
        missing = [d for d in body.get("datasetDataSources", []) if d not in self.datasets]
        kernel = self.kernels.setdefault(ref, Kernel(owner, slug))
        kernel.versions.append(body)
        kernel.polls = 0
        return 200, {
            "ref": f"/code/{ref}",
            "url": f"http://localhost/code/{ref}",
            "versionNumber": len(kernel.versions),
            "invalidDatasetSources": missing,
            "kernelId": 7,
        }

    def _rpc_GetKernelSessionStatus(self, body: dict) -> tuple[int, dict]:
        kernel = self.kernels.get(f"{body.get('userName')}/{body.get('kernelSlug')}")
        if kernel is None:
            return 404, _error(404, "Not found")
        kernel.polls += 1
        if kernel.polls == 1:
            return 200, {"status": "QUEUED"}
        if kernel.polls <= 1 + self.running_polls:
            return 200, {"status": "RUNNING"}
        if self.kernel_failure:
            return 200, {"status": "ERROR", "failureMessage": self.kernel_failure}
        return 200, {"status": "COMPLETE"}

    def _rpc_CreateCodeSubmission(self, body: dict) -> tuple[int, dict]:
        kernel = self.kernels.get(f"{body.get('kernelOwner')}/{body.get('kernelSlug')}")
        version = body.get("kernelVersion")
        if kernel is None or not version or not 1 <= int(version) <= len(kernel.versions):
            return 404, _error(404, "Not found: no such kernel version")
        self.submissions.append(body)
        return 200, {
            "message": "Successfully submitted to MITSUI&CO. Commodity Prediction Challenge",
            "ref": 1000 + len(self.submissions),
        }

    def _rpc_GetSubmissionLimits(self, body: dict) -> tuple[int, dict]:
        return 200, {"numToday": len(self.submissions), "numAllowedNow": 5 - len(self.submissions)}


def _error(status: int, message: str) -> dict:
    return {"code": status, "message": message}


def _handler_for(fake: FakeKaggle) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def _path(self) -> str:
            return urlsplit(self.path).path  # proxy requests carry an absolute URL

        def _body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _reply(self, status: int, payload: dict | None = None) -> None:
            data = json.dumps(payload or {}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            path = self._path()
            raw = self._body()
            if not path.startswith(API_PREFIX):
                self._reply(404, _error(404, f"Not found: {path}"))
                return
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._reply(400, _error(400, "Bad request: body is not JSON"))
                return
            status, payload = fake.handle_rpc(
                path[len(API_PREFIX) :], body, self.headers.get("Authorization")
            )
            self._reply(status, payload)

        def do_PUT(self) -> None:
            path = self._path()
            data = self._body()
            if not path.startswith(UPLOAD_PREFIX):
                self._reply(404, _error(404, f"Not found: {path}"))
                return
            self._reply(fake.handle_upload(path[len(UPLOAD_PREFIX) :], data))

    return Handler
