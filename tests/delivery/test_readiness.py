"""What a real deploy refuses before it calls anything, read offline: a region that lacks a
service the stage uses (botocore's endpoint data), a JumpStart container image other than
the SageMaker SDK's data gives, and a model data URL nobody has confirmed."""

from __future__ import annotations

import copy
import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tools.deploy import regions
from tools.deploy.jumpstart import (
    container_image,
    derive_images,
    load_images,
    read_sdk_config,
)
from tools.deploy.plan import build_plan, readiness_problems
from tools.deploy.regions import SAGEMAKER_SERVICES, SERVICES, missing_services
from tools.deploy.settings import CHALICE_CONFIG, DEPLOY_SETTINGS, load_stage

CONFIG: dict[str, Any] = json.loads(CHALICE_CONFIG.read_text(encoding="utf-8"))
SETTINGS: dict[str, Any] = json.loads(DEPLOY_SETTINGS.read_text(encoding="utf-8"))


def offered_everywhere_but(region: str, lacking: Collection[str]) -> regions.RegionsOf:
    """A fake of botocore's endpoint data: every service is everywhere, except `lacking`
    in `region`."""

    def regions_of(service: str) -> set[str]:
        everywhere = {"us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1"}
        return everywhere - {region} if service in lacking else everywhere

    return regions_of


def ready_settings() -> dict[str, Any]:
    settings = copy.deepcopy(SETTINGS)
    for model in settings["sagemaker"]["regions"].values():
        model["model_data_confirmed"] = True
    for stage in settings["stages"].values():
        stage["alarm_email"] = ""
    return settings


# --- regions ------------------------------------------------------------------------------


def test_the_services_a_region_lacks_are_named_in_the_stages_order() -> None:
    fake = offered_everywhere_but("ca-central-1", {"sagemaker-runtime", "secretsmanager"})
    assert missing_services("ca-central-1", SERVICES, fake) == ["secretsmanager"]
    assert missing_services("ca-central-1", SERVICES + SAGEMAKER_SERVICES, fake) == [
        "secretsmanager",
        "sagemaker-runtime",
    ]
    assert missing_services("us-west-2", SERVICES + SAGEMAKER_SERVICES, fake) == []


@pytest.mark.usefixtures("exported_models")  # a missing model is a problem too
def test_a_region_without_a_service_the_stage_uses_blocks_a_real_deploy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # botocore's data is the boundary: a region it does not list for SageMaker Runtime.
    fake = offered_everywhere_but("us-east-2", {"sagemaker-runtime"})
    monkeypatch.setattr(regions, "botocore_regions", fake)
    staging = load_stage("staging", CONFIG, ready_settings())  # sagemaker, in us-east-2
    onnx = load_stage("prod-ca-central-1", CONFIG, ready_settings())

    assert readiness_problems(staging, build_plan(staging)) == [
        "us-east-2 does not offer sagemaker-runtime (botocore's endpoint data), which this "
        "stage uses"
    ]
    assert readiness_problems(onnx, build_plan(onnx)) == []


def test_every_deployed_stages_region_offers_what_it_uses_in_botocores_data() -> None:
    for name in (n for n in CONFIG["stages"] if not n.startswith("local")):
        stage = load_stage(name)
        used = SERVICES + (SAGEMAKER_SERVICES if stage.uses_sagemaker else ())
        assert missing_services(stage.region, used) == [], name


# --- the JumpStart values ---------------------------------------------------------------


def test_stages_json_container_images_are_what_the_sdk_data_gives() -> None:
    for region, model in SETTINGS["sagemaker"]["regions"].items():
        assert model["container_image"] == container_image(region), region


@pytest.mark.usefixtures("exported_models")
def test_a_container_image_other_than_the_sdk_data_gives_blocks_a_real_deploy() -> None:
    settings = ready_settings()
    guessed = "763104351884.dkr.ecr.us-east-2.amazonaws.com/tensorflow-inference:2.3-cpu"
    settings["sagemaker"]["regions"]["us-east-2"]["container_image"] = guessed
    stage = load_stage("staging", CONFIG, settings)

    [problem] = readiness_problems(stage, build_plan(stage))

    assert guessed in problem
    assert "gives 763104351884.dkr.ecr.us-east-2.amazonaws.com/tensorflow-inference:2.8-cpu" in (
        problem
    )


@pytest.mark.usefixtures("exported_models")
def test_an_unconfirmed_model_data_url_is_the_one_thing_to_confirm_and_says_how() -> None:
    settings = ready_settings()
    settings["sagemaker"]["regions"]["us-east-2"]["model_data_confirmed"] = False
    stage = load_stage("staging", CONFIG, settings)
    url = settings["sagemaker"]["regions"]["us-east-2"]["model_data_url"]

    [problem] = readiness_problems(stage, build_plan(stage))

    assert "sagemaker.regions.us-east-2.model_data_url is not confirmed" in problem
    assert url in problem
    assert 'model_uris.retrieve(region="us-east-2", ' in problem
    assert f'model_id="{SETTINGS["sagemaker"]["jumpstart_model_id"]}"' in problem
    assert '"model_data_confirmed": true' in problem


def test_the_images_are_derived_from_the_sdks_inference_version_and_its_alias() -> None:
    sdk = {
        "inference": {
            "processors": ["cpu", "gpu"],
            "version_aliases": {"2.8": "2.8.4"},
            "versions": {
                "2.8.4": {
                    "registries": {"us-west-2": "763104351884", "af-south-1": "626614931356"},
                    "repository": "tensorflow-inference",
                }
            },
        }
    }
    images = derive_images(sdk, "2.8", "cpu")
    assert container_image("af-south-1", images) == (
        "626614931356.dkr.ecr.af-south-1.amazonaws.com/tensorflow-inference:2.8-cpu"
    )
    assert container_image("eu-west-1", images) is None


SDK_WHEELS = ROOT / ".build-venv" / "wheels"


@pytest.fixture
def sagemaker_sdk_wheel() -> Path:
    """The SageMaker Python SDK's wheel that `make test` downloads (never installed: the
    SDK is no dependency of ours; only its bundled image data is read)."""
    wheels = sorted(SDK_WHEELS.glob("sagemaker-2.*-py3-none-any.whl"))
    assert wheels, f"no SageMaker SDK wheel in {SDK_WHEELS}: `make test` downloads it"
    return wheels[-1]


def test_the_vendored_images_are_the_sdks_own(sagemaker_sdk_wheel: Path) -> None:
    vendored = load_images()
    derived = derive_images(read_sdk_config(sagemaker_sdk_wheel), vendored["framework_version"])
    assert {key: vendored[key] for key in derived} == derived
