"""Start and stop the real `chalice local` process, as `make run` does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support import free_port, issue_key

ROOT = Path(__file__).resolve().parents[2]
CHALICE = Path(sys.executable).parent / "chalice"


class ChaliceLocal:
    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        stage: str = "local",
        environment: dict[str, str] | None = None,
        command_prefix: list[str] | None = None,
        **settings: str,
    ) -> None:
        """`command_prefix` runs the server under another command (which must exec it, so
        that the pid is the server's), e.g. in a mount namespace of its own."""
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._data_dir = data_dir
        self._log_path = log_path
        self._stage = stage
        self._environment = environment or {}
        self._settings = settings
        self._command_prefix = command_prefix or []
        self._process: subprocess.Popen[bytes] | None = None
        self._api_key: str | None = None

    @property
    def api_key(self) -> str:
        """A key of tenant `system-tests` in the server's data folder, made on first use."""
        if self._api_key is None:
            self._api_key = issue_key(self._data_dir, "system-tests")
        return self._api_key

    def start(self, timeout: float = 60) -> ChaliceLocal:
        env = dict(os.environ, IMAGELABELLER_DATA_DIR=str(self._data_dir), **self._environment)
        env.update(
            {f"IMAGELABELLER_{name.upper()}": value for name, value in self._settings.items()}
        )
        command = [
            *self._command_prefix,
            *(str(CHALICE), "local", "--stage", self._stage, "--port", str(self.port)),
        ]
        with open(self._log_path, "ab") as log:
            self._process = subprocess.Popen(
                [*command, "--no-autoreload"], cwd=ROOT, env=env, stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"chalice local exited: {self.log()}")
            try:
                requests.get(f"{self.base_url}/images/ready-check", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError(f"chalice local did not start in {timeout} s: {self.log()}")

    def stop(self, kill: bool = False) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGKILL if kill else signal.SIGINT)
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def pid(self) -> int:
        assert self._process is not None, "not started"
        return self._process.pid

    def log(self) -> str:
        return self._log_path.read_text(errors="replace")[-3000:]
