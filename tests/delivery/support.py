"""Helpers for the delivery tests: run scripts/deploy, and a moto_server of their own."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from tests.system.background import BackgroundServer, moto_server

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEPLOY = PROJECT_DIR / "scripts" / "deploy"
MOTO_ACCOUNT = "123456789012"


def clean_environment(**extra: str) -> dict[str, str]:
    """Our environment without any AWS setting or IMAGELABELLER variable, plus `extra`."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "IMAGELABELLER_"))
    }
    environment.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    environment.update(extra)
    return environment


def run_deploy(*arguments: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DEPLOY), *arguments],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass
class MotoServer:
    """A moto_server process on a free loopback port, and what clients need to reach it."""

    server: BackgroundServer

    @classmethod
    def start(cls, log_path: Path, timeout: float = 30) -> MotoServer:
        return cls(moto_server(log_path).start(timeout))

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()

    def environment(self) -> dict[str, str]:
        """What boto3 (and scripts/deploy) need to talk to this server and nothing else."""
        return clean_environment(
            AWS_ENDPOINT_URL=self.url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            # botocore >= 1.44.4 sends some calls to account-specific hosts (PLATFORM.md).
            AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
        )

    def client(self, service: str, region: str) -> Any:
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
