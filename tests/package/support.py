"""Run `chalice package` for the deployed stages and read what it writes.

The expected values here are written out on purpose, not read from .chalice/config.json:
a test compares what the config produces with what we mean to deploy.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from tools.deploy.model_layer import LAYER_ZIP, build_model_layer
from tools.deploy.package_models import check_package

PROJECT_DIR = Path(__file__).resolve().parents[2]
CHALICE_DIR = PROJECT_DIR / ".chalice"
MERGE_TEMPLATE = CHALICE_DIR / "merge-template.json"
VENV_BIN = Path(sys.executable).parent
CHALICE = VENV_BIN / "chalice"
CFN_LINT = VENV_BIN / "cfn-lint"

TABLE = "ImageLabels"
SAGEMAKER_ENDPOINT = "jumpstart-inception-v3"
STREAM_EXPORT = "imagelabeller-dynamodb-StreamArn"
BUCKET_SCHEME = "open-devops-images-${AWS::Region}-${AWS::AccountId}"
API_FUNCTION = "APIHandler"
STREAM_FUNCTION = "LabelNewImages"
STREAM_EVENT = "LabelNewImagesDynamodbEventSource"
# Lambda's limit for a function's code, unzipped, layers included ("250 MB").
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
# The newest glibc the python3.12 Lambda runtime (Amazon Linux 2023) provides.
LAMBDA_GLIBC = (2, 34)

# Lines for the end of the pytest run (tests/package/conftest.py prints them).
SUMMARY: list[str] = []


@dataclass(frozen=True)
class Stage:
    name: str
    region: str
    labeller: str
    log_retention_days: int
    model: str = "efficientnet-lite0"  # the only model its layer carries

    def __str__(self) -> str:
        return self.name


STAGES = (
    Stage("test", "us-west-1", "onnx", 14),
    Stage("staging", "us-east-2", "sagemaker", 30),
    Stage("prod-us-west-2", "us-west-2", "sagemaker", 90),
    Stage("prod-us-east-1", "us-east-1", "sagemaker", 90),
    Stage("prod-ca-central-1", "ca-central-1", "onnx", 90),
)


@dataclass(frozen=True)
class Packaged:
    """What `chalice package` wrote for one stage: sam.json and deployment.zip."""

    stage: Stage
    directory: Path

    @property
    def template_path(self) -> Path:
        return self.directory / "sam.json"

    @property
    def zip_path(self) -> Path:
        return self.directory / "deployment.zip"

    @property
    def layer_path(self) -> Path:
        """The model layer scripts/deploy builds beside the zip (tools/deploy/model_layer.py)."""
        return self.directory / LAYER_ZIP

    @property
    def template(self) -> dict[str, Any]:
        return _read_json(self.template_path)

    def resource(self, name: str) -> dict[str, Any]:
        resources_: dict[str, Any] = self.template["Resources"]
        assert name in resources_, f"{self.stage}: no resource {name} in {sorted(resources_)}"
        found: dict[str, Any] = resources_[name]
        return found


def _read_json(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def packaging_environment(region: str) -> dict[str, str]:
    """Our environment without AWS or IMAGELABELLER settings, plus a region and dummy keys.

    `chalice package` needs a region but never calls AWS.
    """
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "IMAGELABELLER_"))
    }
    environment.update(
        AWS_DEFAULT_REGION=region,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return environment


@contextmanager
def chalice_deployments_lock() -> Iterator[None]:
    """One packaging test session at a time in this checkout.

    Chalice writes its cached zip in .chalice/deployments/ in place, without a lock; two
    sessions building the same new zip at once would leave a broken one to be reused.
    """
    folder = CHALICE_DIR / "deployments"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".package-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def chalice_package(stage: Stage, out_dir: Path) -> Packaged:
    """What the deploy's packaging step writes: `chalice package`, deployment.zip checked
    to hold no model (tools/deploy/package_models.py), and the stage's model layer."""
    target = out_dir / stage.name
    command = [
        str(CHALICE),
        "package",
        "--stage",
        stage.name,
        "--merge-template",
        str(MERGE_TEMPLATE),
        str(target),
    ]
    result = subprocess.run(
        command,
        cwd=PROJECT_DIR,
        env=packaging_environment(stage.region),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, (
        f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    packaged = Packaged(stage, target)
    check_package(packaged.zip_path)
    build_model_layer(packaged.layer_path, stage.model)
    return packaged


def configured_stage_names() -> list[str]:
    return sorted(_read_json(CHALICE_DIR / "config.json")["stages"])


@cache
def iam_resource_types(action: str) -> tuple[str, ...] | None:
    """The resource types IAM knows for `service:Action` (None: IAM has no such action).

    From the IAM Service Authorization Reference, as cfn-lint ships it.
    """
    service, _, name = action.partition(":")
    spec = _iam_actions().get(service, {}).get("Actions", {}).get(name.lower())
    if spec is None:
        return None
    return tuple(spec.get("Resources", ()))


@cache
def _iam_actions() -> dict[str, Any]:
    policies = resources.files("cfnlint") / "data" / "AdditionalSpecs" / "Policies.json"
    loaded: dict[str, Any] = json.loads(policies.read_text(encoding="utf-8"))
    return loaded


def policy_statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in role["Properties"].get("Policies", []):
        statements.extend(policy["PolicyDocument"]["Statement"])
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def wheel_tags(archive: zipfile.ZipFile, distribution: str) -> list[str]:
    """The `Tag:` lines of <distribution>-<version>.dist-info/WHEEL in the zip."""
    pattern = re.compile(rf"^{re.escape(distribution)}-[^/]+\.dist-info/WHEEL$", re.IGNORECASE)
    wheels = [name for name in archive.namelist() if pattern.match(name)]
    assert len(wheels) == 1, f"expected one WHEEL file for {distribution}, found {wheels}"
    text = archive.read(wheels[0]).decode("utf-8")
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")]


def elf_header(archive: zipfile.ZipFile, name: str) -> tuple[bytes, int, int]:
    """(magic, class, machine) of an ELF file in the zip: class 2 is 64-bit, machine 62
    is x86-64."""
    with archive.open(name) as member:
        head = member.read(20)
    return head[:4], head[4], int.from_bytes(head[18:20], "little")


def manylinux_glibc(platform_tag: str) -> tuple[int, int] | None:
    """The glibc a manylinux x86_64 platform tag needs; None for any other platform."""
    legacy = {"manylinux1_x86_64": (2, 5), "manylinux2010_x86_64": (2, 12)}
    legacy["manylinux2014_x86_64"] = (2, 17)
    if platform_tag in legacy:
        return legacy[platform_tag]
    match = re.fullmatch(r"manylinux_(\d+)_(\d+)_x86_64", platform_tag)
    return (int(match.group(1)), int(match.group(2))) if match else None


def base_python() -> Path:
    """The Python 3.12 interpreter behind our virtual environment (no site-packages of ours)."""
    base = Path(str(getattr(sys, "_base_executable", "")))
    assert base.is_file(), f"cannot find the base interpreter of {sys.executable}"
    return base
