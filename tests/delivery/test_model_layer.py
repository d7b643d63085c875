"""The model layer's zip (tools/deploy/model_layer.py), built from a stand-in
site-packages: what it holds, in which modes, and that it is the same bytes every time."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chalicelib.config import LAYER_MODELS_PACKAGE
from tools.deploy.model_layer import (
    LAYER_ARN_OUTPUT,
    LayerNotBuilt,
    build_model_layer,
    layer_template_body,
)

WHEEL_TAG = "cp312-cp312-manylinux_2_28_x86_64"


def site_packages(root: Path, tag: str = WHEEL_TAG) -> Path:
    """onnxruntime as pip installs it, beside packages the layer must not take."""
    packages = root / "site-packages"
    runtime = packages / "onnxruntime"
    (runtime / "capi").mkdir(parents=True)
    (runtime / "__init__.py").write_text("version = '1.32.0'\n")
    library = runtime / "capi" / "onnxruntime_pybind11_state.so"
    library.write_bytes(b"\x7fELF")
    library.chmod(0o700)
    (runtime / "__pycache__").mkdir()
    (runtime / "__pycache__" / "__init__.cpython-312.pyc").write_bytes(b"")
    info = packages / "onnxruntime-1.32.0.dist-info"
    info.mkdir()
    (info / "WHEEL").write_text(f"Wheel-Version: 1.0\nTag: {tag}\n")
    (info / "top_level.txt").write_text("onnxruntime\n")
    (info / "METADATA").write_text("Name: onnxruntime\n")
    for other in ("numpy", "flatbuffers", "google"):
        (packages / other).mkdir()
        (packages / other / "__init__.py").write_text("")
    return packages


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "models" / "efficientnet-lite0.onnx"
    path.parent.mkdir()
    path.write_bytes(b"onnx model bytes")
    return path


def test_the_layer_holds_onnxruntime_and_the_stages_model_under_python(
    tmp_path: Path, model: Path
) -> None:
    layer = build_model_layer(
        tmp_path / "out" / "model-layer.zip", "efficientnet-lite0", site_packages(tmp_path), model
    )

    with zipfile.ZipFile(layer) as archive:
        names = archive.namelist()
        assert names == sorted(names)
        assert names == [
            "python/imagelabeller_models/__init__.py",
            "python/imagelabeller_models/efficientnet-lite0.onnx",
            "python/onnxruntime-1.32.0.dist-info/METADATA",
            "python/onnxruntime-1.32.0.dist-info/WHEEL",
            "python/onnxruntime-1.32.0.dist-info/top_level.txt",
            "python/onnxruntime/__init__.py",
            "python/onnxruntime/capi/onnxruntime_pybind11_state.so",
        ]
        assert archive.read(f"python/{LAYER_MODELS_PACKAGE}/efficientnet-lite0.onnx") == (
            b"onnx model bytes"
        )
        modes = {entry.filename: entry.external_attr >> 16 & 0o777 for entry in archive.infolist()}
    # Readable by all (Lambda's user owns none of it); executables stay executable.
    assert modes["python/onnxruntime/capi/onnxruntime_pybind11_state.so"] == 0o755
    assert modes["python/onnxruntime/__init__.py"] == 0o644


def test_the_same_inputs_give_the_same_zip_so_an_unchanged_layer_is_not_redeployed(
    tmp_path: Path, model: Path
) -> None:
    packages = site_packages(tmp_path)
    first = build_model_layer(tmp_path / "a.zip", "efficientnet-lite0", packages, model)
    (packages / "onnxruntime" / "__init__.py").touch()  # a newer mtime, the same bytes
    second = build_model_layer(tmp_path / "b.zip", "efficientnet-lite0", packages, model)
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize(
    "tag", ["cp312-cp312-macosx_11_0_arm64", "cp311-cp311-manylinux_2_28_x86_64", "py3-none-any"]
)
def test_a_wheel_lambda_cannot_load_is_refused(tmp_path: Path, model: Path, tag: str) -> None:
    with pytest.raises(LayerNotBuilt, match="Lambda platform"):
        build_model_layer(
            tmp_path / "l.zip", "efficientnet-lite0", site_packages(tmp_path, tag), model
        )


def test_a_missing_model_is_refused_with_what_to_run(tmp_path: Path) -> None:
    absent = tmp_path / "models" / "efficientnet-lite0.onnx"
    with pytest.raises(LayerNotBuilt, match="make setup"):
        build_model_layer(tmp_path / "l.zip", "efficientnet-lite0", site_packages(tmp_path), absent)


def test_the_layer_stack_makes_a_python_3_12_layer_from_s3_and_outputs_its_arn() -> None:
    template = json.loads(layer_template_body())
    (layer,) = template["Resources"].values()
    assert layer["Type"] == "AWS::Lambda::LayerVersion"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    assert layer["Properties"]["Content"] == {
        "S3Bucket": {"Ref": "ContentBucket"},
        "S3Key": {"Ref": "ContentKey"},
    }
    # The app stack's rollback may point back at the previous version: it is kept.
    assert layer["UpdateReplacePolicy"] == "Retain"
    assert template["Outputs"][LAYER_ARN_OUTPUT]["Value"] == {"Ref": "ModelLayer"}


@pytest.mark.slow  # a cfn-lint process
def test_the_inline_layer_template_passes_cfn_lint(tmp_path: Path) -> None:
    template = tmp_path / "layer.json"
    template.write_text(layer_template_body(), encoding="utf-8")
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    finished = subprocess.run(
        [str(cfn_lint), str(template)], capture_output=True, text=True, timeout=300, check=False
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
