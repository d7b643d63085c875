"""Background servers the AWS-backend system tests need: moto_server and the local
SageMaker InvokeEndpoint server, each a real process on a loopback port."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


class BackgroundServer:
    def __init__(self, command: list[str], port: int, log_path: Path, ready_path: str) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._command = command
        self._log_path = log_path
        self._ready_path = ready_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> BackgroundServer:
        with open(self._log_path, "ab") as log:
            self._process = subprocess.Popen(self._command, cwd=ROOT, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"{self._command[0]} exited: {self._log_path.read_text()}")
            try:
                requests.get(self.url + self._ready_path, timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self._command} did not start in {timeout} s")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def moto_server(log_path: Path) -> BackgroundServer:
    port = free_port()
    command = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    return BackgroundServer(command, port, log_path, "/moto-api/")


def sagemaker_runtime_server(log_path: Path, endpoint: str) -> BackgroundServer:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "tools.localaws.sagemaker_runtime",
        "--port",
        str(port),
        "--endpoint",
        endpoint,
    ]
    return BackgroundServer(command, port, log_path, "/ping")
