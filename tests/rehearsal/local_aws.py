"""MiniStack, a local AWS that runs Lambda code, started by the rehearsal from its own venv.

`make test` builds `.ministack-venv` (requirements-emulator.txt). It holds none of the
app's dependencies on purpose: Lambda code runs on MiniStack's interpreter, so a package
missing from the deployment zip fails here as it would on AWS.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
MINISTACK_PYTHON = ROOT / ".ministack-venv" / "bin" / "python"
LAUNCHER = Path(__file__).with_name("ministack_main.py")
REGION = "us-west-1"  # the test stage's region
START_SECONDS = 60
# Dummy credentials: the emulator takes any; nothing here can reach AWS.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "rehearsal",
    "AWS_SECRET_ACCESS_KEY": "rehearsal",
    "AWS_DEFAULT_REGION": REGION,
}


@dataclass
class MiniStack:
    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.folder / "ministack.log"

    def start(self) -> MiniStack:
        if not MINISTACK_PYTHON.exists():
            raise RuntimeError(f"{MINISTACK_PYTHON} is missing: run `make test` (or make emulator)")
        temporary = self.folder / "tmp"  # its ministack-lambda-* folders outlive it otherwise
        temporary.mkdir(parents=True, exist_ok=True)
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.folder),
            "TMPDIR": str(temporary),
            "BIND_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(self.port),
            **CREDENTIALS,
        }
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(MINISTACK_PYTHON), str(LAUNCHER)],
                cwd=self.folder,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_until_healthy()
        return self

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"MiniStack exited: {self.log_tail()}")
            try:
                if requests.get(f"{self.endpoint}/_ministack/health", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"MiniStack did not start in {START_SECONDS} s: {self.log_tail()}")

    def log_tail(self, characters: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-characters:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def client(self, service: str) -> object:
        import boto3

        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )


def scratch_folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="imagelabeller-rehearsal-"))
