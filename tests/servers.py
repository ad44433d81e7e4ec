"""Real servers on loopback for the proxy's tests: the fake Zenzefi and our ASGI app."""

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=3)
    except subprocess.TimeoutExpired:
        # uvicorn waits for keep-alive connections from pools we no longer own.
        process.kill()
        process.wait(timeout=5)


@contextlib.contextmanager
def fake_zenzefi(*extra_args: str):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy.fake_zenzefi", "--port", str(port), *extra_args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_port(port)
        yield process, port
    finally:
        stop(process)


class ThreadServer:
    """Our whole ASGI application (proxy + Django) under uvicorn, in a thread of the test process."""

    def __init__(self):
        from zenzefi.asgi import application

        self.port = free_port()
        config = uvicorn.Config(application, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        wait_port(self.port)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextlib.contextmanager
def process_server(env: dict[str, str], *, unset: tuple[str, ...] = (), output: list[str] | None = None):
    """Our ASGI app in a separate uvicorn process (for checks that must hold across processes).

    ``env`` is added to this process's environment, without the variables named in ``unset``.
    ``output``, if given, receives the lines the process printed (its log), once it has stopped.
    """
    port = free_port()
    # A file, not a pipe, when the log is kept: a chatty process would block once the pipe is full.
    log = tempfile.TemporaryFile("w+") if output is not None else subprocess.PIPE  # noqa: SIM115  closed below
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "zenzefi.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if k not in unset}, "ENV_FILE": "", **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)
        if output is not None:
            log.seek(0)
            output.extend(log.read().splitlines())
            log.close()


class WebhookReceiver:
    """An integrator's webhook receiver on loopback: records every request and answers as told.

    ``answers`` is a list of what to answer next, in order (then 200): an int status, ``("slow", seconds)``,
    or ``("redirect", status)`` (Location: /elsewhere).
    """

    def __init__(self):
        import http.server

        receiver = self
        self.requests: list[dict] = []
        self.answers: list = []
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.requests.append(
                        {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                    )
                    answer = receiver.answers.pop(0) if receiver.answers else 200
                status, extra = answer, {}
                if isinstance(answer, tuple) and answer[0] == "slow":
                    time.sleep(answer[1])
                    status = 200
                elif isinstance(answer, tuple) and answer[0] == "redirect":
                    status, extra = answer[1], {"Location": "/elsewhere"}
                reply = f'{{"received": {len(receiver.requests)}}}'.encode()
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
