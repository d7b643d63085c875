"""The int8 models: in the catalogue and configurable (fast), and, once `make setup` has
quantised them (tools/model/quantize.py), labelling real photos as their float models do."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.adapters.onnx import OnnxLabeller, model_spec
from chalicelib.config import MODELS_DIR, Limits, Settings
from chalicelib.domain.model_catalogue import CATALOGUE
from tests.support import EXPECTED_TOP_LABELS, PHOTO_FILES, photo_png
from tools.model import catalogue as build_catalogue
from tools.model.agreement import cpu_has_vnni, measure_agreement
from tools.model.quantize import CALIBRATION_PHOTOS, HELD_APART_PHOTOS

INT8_MODELS = {
    "efficientnet-lite0-int8": "efficientnet-lite0",
    "efficientnet-lite2-int8": "efficientnet-lite2",
}
# Top-1 agreement with float on the 15 held-apart photos, measured 2026-12-02 with
# `python -m tools.model.agreement`, less a margin of two photos. It depends on the CPU:
# without VNNI, onnxruntime multiplies uint8 by int8 with AVX2's VPMADDUBSW, whose 16-bit
# sums saturate (onnxruntime's quantisation docs say so), and the int8 models drift further
# from float: Lite0 15/15 and Lite2 12/15 on an AVX-512 VNNI CPU, 10/15 and 9/15 on an
# AVX2-only one (docs/PERFORMANCE.md).
MIN_AGREEMENT = (
    {"efficientnet-lite0-int8": 13 / 15, "efficientnet-lite2-int8": 10 / 15}
    if cpu_has_vnni()
    else {"efficientnet-lite0-int8": 8 / 15, "efficientnet-lite2-int8": 7 / 15}
)


def test_the_catalogue_lists_an_int8_model_of_each_float_model_with_its_input() -> None:
    quantised = {m.name: m.quantised_from for m in CATALOGUE.models if m.quantised_from}
    assert quantised == INT8_MODELS
    for int8, float_model in INT8_MODELS.items():
        assert model_spec(int8).input_size == model_spec(float_model).input_size
    assert CATALOGUE.default == "efficientnet-lite0"


def test_the_build_exports_the_float_models_and_quantises_the_int8_ones() -> None:
    # The Makefile's rules: PyTorch exports these, tools/model/quantize.py makes the others.
    assert list(build_catalogue.exported_input_sizes()) == list(INT8_MODELS.values())
    assert build_catalogue.quantised_sources() == INT8_MODELS
    assert build_catalogue.model_files(INT8_MODELS) == [
        f"models/{name}.onnx" for name in INT8_MODELS
    ]


@pytest.mark.parametrize("name", sorted(INT8_MODELS))
def test_the_configuration_accepts_an_int8_model_by_name(name: str) -> None:
    settings = Settings.from_environ({"IMAGELABELLER_MODEL": name.upper()})
    assert settings.model == name
    assert settings.model_path == MODELS_DIR / f"{name}.onnx"


def test_agreement_is_measured_on_photos_never_used_for_calibration() -> None:
    held_apart = {photo.path for photo in HELD_APART_PHOTOS}
    assert not held_apart & {photo.path for photo in CALIBRATION_PHOTOS}
    # The photos whose labels the tests pin are among those held apart.
    assert set(PHOTO_FILES.values()) <= held_apart
    for photo in (*CALIBRATION_PHOTOS, *HELD_APART_PHOTOS):
        assert photo.read_bytes(), photo  # shipped in the installed wheel: no download


@pytest.fixture(params=sorted(INT8_MODELS))
def int8_labeller(request: pytest.FixtureRequest, exported_models: dict[str, Path]) -> OnnxLabeller:
    name: str = request.param
    return OnnxLabeller(model_spec(name), exported_models[name], Limits().max_image_pixels)


def test_int8_models_label_coffee_espresso_and_the_cat_a_cat(
    int8_labeller: OnnxLabeller,
) -> None:
    assert int8_labeller.model_id == f"{int8_labeller.spec.name}/onnx"
    coffee, cat = int8_labeller.label([photo_png("coffee"), photo_png("chelsea")], top_k=3)
    assert coffee.labels[0].name in EXPECTED_TOP_LABELS["coffee"]
    assert coffee.labels[0].score > 0.5
    assert cat.labels[0].name in EXPECTED_TOP_LABELS["chelsea"]


@pytest.mark.usefixtures("exported_models")
@pytest.mark.parametrize("name", sorted(INT8_MODELS))
def test_int8_models_agree_with_float_on_the_held_apart_photos(name: str) -> None:
    agreement = measure_agreement(name)
    assert agreement.photos == len(HELD_APART_PHOTOS) == 15
    assert agreement.top1_agreement >= MIN_AGREEMENT[name], agreement.disagreements
    assert agreement.mean_score_difference < 0.1
