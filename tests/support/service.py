"""The real service on loopback: in-process on its own thread, or `stax-import serve` as a
child process that a test can SIGKILL."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from config.settings import Settings
from ingest.app import Service, Services, bootstrap, default_pipeline
from ingest.pipeline import Pipeline


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_for(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "smtp_port": 0,
        "http_port": 0,
        "worker_idle_poll_seconds": 0.1,
        "retry_backoff_seconds": 0,
    }
    values.update(overrides)
    return Settings(**values)


class InProcessService:
    """The service's own wiring on a private event loop in a thread."""

    def __init__(self, settings: Settings, pipeline: Pipeline | None = None) -> None:
        self.services: Services = bootstrap(settings)
        self._service = Service(self.services, pipeline or default_pipeline(self.services))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> InProcessService:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._service.start(), self._loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._service.stop(), self._loop).result(60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def port(self) -> int:
        return self._service.listener.port

    @property
    def console_port(self) -> int:
        assert self._service.console is not None
        return self._service.console.port


class ChildService:
    """`stax-import serve` in a child process, configured by environment variables."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = {"STAX_HTTP_PORT": str(free_port()), **os.environ, **env}
        self.port = int(env["STAX_SMTP_PORT"])
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ingest.cli", "serve"],
                env=self.env,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"serve exited with {self.process.returncode}; see {self.log_path}"
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("serve did not start listening in time")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def terminate(self, timeout: float = 60) -> int:
        assert self.process is not None
        self.process.terminate()
        return self.process.wait(timeout)
