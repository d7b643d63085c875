"""tools/deploy/stages.json against .chalice/config.json, and what a stage's settings refuse."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from tools.deploy.plan import build_plan, readiness_problems
from tools.deploy.settings import (
    CHALICE_CONFIG,
    DEPLOY_SETTINGS,
    MAX_APP_STACK_NAME,
    StageRefused,
    deployed_stage_names,
    load_stage,
)

CONFIG: dict[str, Any] = json.loads(CHALICE_CONFIG.read_text(encoding="utf-8"))
SETTINGS: dict[str, Any] = json.loads(DEPLOY_SETTINGS.read_text(encoding="utf-8"))
# AWS's Deep Learning Containers registry in the commercial regions.
DLC_REGISTRY = "763104351884"


def test_stages_json_has_exactly_the_deployed_stages_of_the_chalice_config() -> None:
    assert list(SETTINGS["stages"]) == deployed_stage_names(CONFIG)


def test_every_sagemaker_stage_has_a_jumpstart_model_in_its_own_region() -> None:
    for name in deployed_stage_names(CONFIG):
        stage = load_stage(name)
        if stage.sagemaker is None:
            continue
        model = stage.sagemaker.model
        image = re.fullmatch(
            r"(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/[a-z0-9][a-z0-9._-]*:[\w.-]+",
            model.container_image,
        )
        assert image, model.container_image
        assert image.groups() == (DLC_REGISTRY, stage.region)
        assert model.model_data_url.startswith(f"s3://jumpstart-cache-prod-{stage.region}/")
        assert model.model_data_url.endswith(".tar.gz")


def test_jumpstart_models_exist_only_for_regions_with_a_sagemaker_stage() -> None:
    sagemaker_regions = {
        stage.region
        for stage in map(load_stage, deployed_stage_names(CONFIG))
        if stage.uses_sagemaker
    }
    assert set(SETTINGS["sagemaker"]["regions"]) == sagemaker_regions


def test_app_stack_names_fit_lambda_function_names() -> None:
    for name in deployed_stage_names(CONFIG):
        app = load_stage(name).stack("app").name
        assert app == f"imagelabeller-{name}"
        assert len(f"{app}-label_new_images") <= 64
        assert len(app) <= MAX_APP_STACK_NAME


def test_the_labeller_comes_from_the_chalice_config() -> None:
    config = copy.deepcopy(CONFIG)
    config["stages"]["test"]["environment_variables"]["IMAGELABELLER_LABELLER"] = "sagemaker"
    settings = copy.deepcopy(SETTINGS)
    settings["sagemaker"]["regions"]["us-west-1"] = {
        "container_image": f"{DLC_REGISTRY}.dkr.ecr.us-west-1.amazonaws.com/tensorflow-inference:x",
        "model_data_url": "s3://jumpstart-cache-prod-us-west-1/model.tar.gz",
        "model_data_confirmed": True,
    }

    stage = load_stage("test", config, settings)

    assert build_plan(stage)[0].name == "sagemaker"


def test_a_sagemaker_stage_without_a_model_for_its_region_is_refused() -> None:
    config = copy.deepcopy(CONFIG)
    config["stages"]["test"]["environment_variables"]["IMAGELABELLER_LABELLER"] = "sagemaker"

    with pytest.raises(StageRefused, match="no JumpStart model for us-west-1"):
        load_stage("test", config, SETTINGS)


def test_a_stage_that_allows_private_urls_is_refused() -> None:
    config = copy.deepcopy(CONFIG)
    config["stages"]["test"]["environment_variables"]["IMAGELABELLER_ALLOW_PRIVATE_URLS"] = "true"

    with pytest.raises(StageRefused, match="must not"):
        load_stage("test", config, SETTINGS)


def test_a_stage_without_a_region_is_refused() -> None:
    config = copy.deepcopy(CONFIG)
    del config["stages"]["test"]["environment_variables"]["IMAGELABELLER_AWS_REGION"]

    with pytest.raises(StageRefused, match="IMAGELABELLER_AWS_REGION"):
        load_stage("test", config, SETTINGS)


def test_an_app_stack_name_over_46_characters_is_refused() -> None:
    settings = copy.deepcopy(SETTINGS)
    # 47 characters: `<name>-deliver_callbacks` would be 65, one over Lambda's limit.
    settings["stacks"]["app"]["name"] = "imagelabeller-application-stack-of-stag-{stage}"
    assert len(settings["stacks"]["app"]["name"].format(stage="staging")) == 47

    with pytest.raises(StageRefused, match="at most 46"):
        load_stage("staging", CONFIG, settings)


def test_unconfirmed_jumpstart_values_and_a_missing_alarm_email_block_a_real_deploy() -> None:
    settings = copy.deepcopy(SETTINGS)
    settings["sagemaker"]["regions"]["us-east-2"]["model_data_confirmed"] = False
    settings["stages"]["staging"]["alarm_email"] = None
    stage = load_stage("staging", CONFIG, settings)

    problems = readiness_problems(stage, build_plan(stage))

    assert any("model_data_url is not confirmed" in p for p in problems)
    assert any("stages.staging.alarm_email is not set" in p for p in problems)


@pytest.mark.usefixtures("exported_models")  # a missing model is a problem too
def test_confirmed_values_and_an_alarm_email_leave_nothing_to_fix() -> None:
    settings = copy.deepcopy(SETTINGS)
    settings["sagemaker"]["regions"]["us-east-2"]["model_data_confirmed"] = True
    settings["stages"]["staging"]["alarm_email"] = "oncall@example.com"
    stage = load_stage("staging", CONFIG, settings)

    assert readiness_problems(stage, build_plan(stage)) == []


@pytest.mark.usefixtures("exported_models")  # a missing model is a problem too
def test_an_empty_alarm_email_means_no_subscription_on_purpose() -> None:
    settings = copy.deepcopy(SETTINGS)
    settings["stages"]["test"]["alarm_email"] = ""
    stage = load_stage("test", CONFIG, settings)

    assert readiness_problems(stage, build_plan(stage)) == []
