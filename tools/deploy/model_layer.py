"""The model layer: onnxruntime and the stage's model, outside the function's zip.

Both deploy paths attach it to the labelling function: the app stack through the merge
template's `ModelLayerArn` parameter, `chalice deploy` through the `layers` that
scripts/configure-stage writes. The function's zip then holds neither (onnxruntime is
27.7 MB zipped, a model 17 to 23 MB), and stays far under Lambda's 50 MiB direct-upload
limit, so `chalice deploy` can upload it.

The zip holds, under `python/` (which Lambda extracts to /opt/python, on sys.path):

- `onnxruntime/` and its dist-info, copied from .venv, which must hold the Lambda
  platform's wheel (manylinux x86_64, CPython 3.12: checked). Inference needs nothing
  else of its dependencies: numpy comes from the function's zip, and flatbuffers,
  protobuf and packaging are used only by its conversion and quantization tools;
- `imagelabeller_models/__init__.py` and `imagelabeller_models/<model>.onnx`, the stage's
  model only. The app finds it through the package's folder (config.model_location),
  not a fixed /opt path, because an emulator may extract layers elsewhere.

The zip is the same bytes for the same inputs (fixed timestamps, sorted entries), so its
content-addressed key does not change, and an unchanged layer stack is "No updates".
"""

from __future__ import annotations

import json
import os
import re
import stat
import sysconfig
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.config import LAYER_MODELS_PACKAGE, model_file
from tools.deploy import artifacts
from tools.deploy.actions import Produced, RunContext, Value, aws_call, resolve
from tools.deploy.cloudformation import DeployError
from tools.deploy.settings import relative

LAYER_ZIP = "model-layer.zip"
RUNTIME = "python3.12"
ARCHITECTURE = "x86_64"
# What the layer copies from site-packages: `import onnxruntime` and InferenceSession.
DISTRIBUTIONS = ("onnxruntime",)
LAMBDA_WHEEL_TAG = re.compile(
    r"^cp312-cp312-manylinux_\d+_\d+_x86_64$|^cp312-cp312-manylinux2014_x86_64$"
)
LAYER_ARN_OUTPUT = "LayerVersionArn"
# The merge template's parameter that gives the labelling function the layer.
APP_LAYER_PARAMETER = "ModelLayerArn"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
PACKAGE_INIT = (
    '"""The ONNX models of ImageLabeller, in the model layer (tools/deploy/model_layer.py).\n\n'
    "chalicelib.config.model_location finds `<model>.onnx` in this package's folder.\n"
    '"""\n'
)

LAYER_TEMPLATE: dict[str, Any] = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Description": (
        "ImageLabeller: the model layer (onnxruntime and the stage's ONNX model) for the "
        "labelling function, made by scripts/deploy (tools/deploy/model_layer.py)"
    ),
    "Parameters": {
        "ContentBucket": {"Type": "String", "Description": "The artifacts bucket"},
        "ContentKey": {"Type": "String", "Description": "layers/<sha256>.zip in it"},
    },
    "Resources": {
        "ModelLayer": {
            "Type": "AWS::Lambda::LayerVersion",
            # A new zip replaces the version. Keep the old one: if the app stack's update
            # then fails, its rollback points the function at the old version again, which
            # fails if that version was deleted. Old versions cost only their storage.
            "UpdateReplacePolicy": "Retain",
            "DeletionPolicy": "Delete",
            "Properties": {
                "LayerName": {"Fn::Sub": "${AWS::StackName}"},
                "Description": "onnxruntime and the ONNX model (python/imagelabeller_models)",
                "CompatibleRuntimes": [RUNTIME],
                "CompatibleArchitectures": [ARCHITECTURE],
                "Content": {
                    "S3Bucket": {"Ref": "ContentBucket"},
                    "S3Key": {"Ref": "ContentKey"},
                },
            },
        }
    },
    "Outputs": {
        LAYER_ARN_OUTPUT: {
            "Description": "The layer version the labelling function uses",
            "Value": {"Ref": "ModelLayer"},
        }
    },
}


class LayerNotBuilt(Exception):
    """The layer cannot be built from this machine's files (says why)."""


def layer_template_body() -> str:
    return json.dumps(LAYER_TEMPLATE, indent=2)


def layer_key(digest: str) -> str:
    return f"layers/{digest}.zip"


def site_packages() -> Path:
    """The site-packages of the running interpreter (.venv's under scripts/deploy)."""
    return Path(sysconfig.get_paths()["purelib"])


def dist_info(packages: Path, distribution: str) -> Path:
    found = sorted(packages.glob(f"{distribution}-*.dist-info"))
    if len(found) != 1:
        raise LayerNotBuilt(
            f"expected one {distribution} install in {packages}, found "
            f"{[path.name for path in found] or 'none'}: run `make setup`"
        )
    return found[0]


def check_lambda_wheel(info: Path) -> None:
    """Refuse a wheel Lambda cannot load (a macOS .venv, another Python)."""
    wheel = (info / "WHEEL").read_text(encoding="utf-8")
    tags = [line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Tag:")]
    if not tags or not all(LAMBDA_WHEEL_TAG.match(tag) for tag in tags):
        raise LayerNotBuilt(
            f"{info.name} in .venv is built for {', '.join(tags) or 'an unknown platform'}; the "
            "model layer needs the Lambda platform's wheel (cp312, manylinux x86_64): deploy "
            "from Linux x86_64 with Python 3.12 (as the pipelines do)"
        )


def files_under(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def layer_entries(model: str, packages: Path, model_path: Path) -> list[tuple[str, Path | str]]:
    """(name in the zip, file or text) of everything the layer holds, sorted by name."""
    entries: list[tuple[str, Path | str]] = []
    for distribution in DISTRIBUTIONS:
        info = dist_info(packages, distribution)
        check_lambda_wheel(info)
        top_level = (info / "top_level.txt").read_text(encoding="utf-8").split()
        for folder in [*(packages / name for name in top_level), info]:
            for path in files_under(folder):
                entries.append((f"python/{path.relative_to(packages).as_posix()}", path))
    if not model_path.is_file():
        raise LayerNotBuilt(f"{relative(model_path)} is missing: run `make setup`")
    entries.append((f"python/{LAYER_MODELS_PACKAGE}/__init__.py", PACKAGE_INIT))
    entries.append((f"python/{LAYER_MODELS_PACKAGE}/{model}.onnx", model_path))
    return sorted(entries)


def build_model_layer(
    zip_path: Path, model: str, packages: Path | None = None, model_path: Path | None = None
) -> Path:
    """Write the layer zip for `model`: the same inputs give the same bytes."""
    entries = layer_entries(model, packages or site_packages(), model_path or model_file(model))
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = zip_path.with_suffix(".zip.tmp")
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, source in entries:
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            executable = isinstance(source, Path) and os.stat(source).st_mode & stat.S_IXUSR
            # Readable by all: Lambda's user owns none of the files.
            info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
            data = source.read_bytes() if isinstance(source, Path) else source.encode("utf-8")
            archive.writestr(info, data)
    os.replace(temporary, zip_path)
    return zip_path


@dataclass(frozen=True)
class BuildModelLayer:
    """out/<stage>/model-layer.zip: onnxruntime from .venv and the stage's model."""

    out_dir: Path
    model: str

    @property
    def zip_path(self) -> Path:
        return self.out_dir / LAYER_ZIP

    def describe(self) -> list[str]:
        return [
            f"write {relative(self.zip_path)}: python/onnxruntime (from .venv) and "
            f"python/{LAYER_MODELS_PACKAGE}/{self.model}.onnx (calls no AWS)"
        ]

    def run(self, context: RunContext) -> None:
        try:
            build_model_layer(self.zip_path, self.model)
        except LayerNotBuilt as error:
            raise DeployError(str(error)) from error
        size = self.zip_path.stat().st_size
        context.say(f"model layer: {relative(self.zip_path)} ({size / 1e6:.1f} MB)")


@dataclass(frozen=True)
class UploadModelLayer:
    """The layer zip to the artifacts bucket, once per content (layers/<sha256>.zip)."""

    region: str
    bucket: Value
    out_dir: Path
    key: Produced

    def describe(self) -> list[str]:
        key = layer_key(f"<sha256 of {relative(self.out_dir / LAYER_ZIP)}>")
        return [
            aws_call("s3", "HeadObject", self.region, Bucket=self.bucket, Key=key),
            aws_call("s3", "PutObject", self.region, Bucket=self.bucket, Key=key)
            + " (only if HeadObject found nothing)",
        ]

    def run(self, context: RunContext) -> None:
        path = self.out_dir / LAYER_ZIP
        key = layer_key(artifacts.sha256_of_file(path))
        bucket = resolve(self.bucket, context)
        artifacts.upload_once(context.client("s3", self.region), bucket, key, path, context.say)
        context.produced[self.key.name] = key
