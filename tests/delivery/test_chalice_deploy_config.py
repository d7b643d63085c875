"""scripts/configure-stage: the intrinsics of the policy files and the merge template
resolved for `chalice deploy`, written into a copy of .chalice/ (tools/deploy/chalice_stage.py,
intrinsics.py, configure.py). No AWS: the deployed stacks' values are made up here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from chalice.config import Config

from tools.deploy.chalice_stage import (
    RENDERED_FOLDER,
    ConfigureRefused,
    configure_stage,
    configured_for_chalice_deploy,
    merge_template_functions,
    reset_stage,
)
from tools.deploy.configure import stream_mapping_settings
from tools.deploy.emulator import FUNCTION_OVERRIDES
from tools.deploy.intrinsics import Place, UnresolvedIntrinsic, render
from tools.deploy.settings import PROJECT_DIR

ACCOUNT = "111122223333"
REGION = "us-west-1"
STREAM_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/ImageLabels/stream/2026-12-02T00:00:00.000"
LAYER_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:imagelabeller-test-layer:3"
EXPORTS = {
    "imagelabeller-dynamodb-StreamArn": STREAM_ARN,
    "imagelabeller-dynamodb-LabellingFailedQueueArn": (
        f"arn:aws:sqs:{REGION}:{ACCOUNT}:imagelabeller-labelling-failed"
    ),
    "imagelabeller-s3-CallbackQueueUrl": (
        f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/imagelabeller-callbacks"
    ),
    "imagelabeller-secrets-WebhookSecretArn": (
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:imagelabeller-webhook-secret-AbCdEf"
    ),
}
PLACE = Place(
    region=REGION,
    account_id=ACCOUNT,
    partition="aws",
    stack_name="imagelabeller-test",
    exports=EXPORTS,
    parameters={"ModelLayerArn": LAYER_ARN},
)
FUNCTIONS = ("api_handler", "label_new_images", "register_uploads", "deliver_callbacks")


def read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def chalice_dir(tmp_path: Path) -> Path:
    """A copy of the project's .chalice/ (config, merge template, policy files)."""
    copy = tmp_path / ".chalice"
    copy.mkdir()
    for path in (PROJECT_DIR / ".chalice").glob("*.json"):
        shutil.copyfile(path, copy / path.name)
    return copy


def configured(chalice_dir: Path, overrides: dict[str, str] | None = None) -> dict[str, Any]:
    config = configure_stage(
        read(chalice_dir / "config.json"),
        "test",
        read(chalice_dir / "merge-template.json"),
        PLACE,
        chalice_dir,
        overrides,
    )
    (chalice_dir / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return config


def chalice_view(chalice_dir: Path, function: str | None = None) -> Config:
    """The stage as `chalice deploy` reads it (its own Config class)."""
    config = Config(chalice_stage="test", config_from_disk=read(chalice_dir / "config.json"))
    return config.scope("test", function) if function else config


# --- intrinsics -----------------------------------------------------------------------------


def test_sub_ref_and_import_value_resolve_to_the_stages_values() -> None:
    document = {
        "Resource": [
            {"Fn::Sub": "arn:${AWS::Partition}:s3:::images-${AWS::Region}-${AWS::AccountId}/*"},
            {"Fn::Sub": ["${Name}-${AWS::StackName}", {"Name": {"Ref": "AWS::Region"}}]},
            {"Fn::ImportValue": "imagelabeller-dynamodb-StreamArn"},
            {"Fn::Sub": "${!Literal}"},
        ],
        "Untouched": ["*", 3, True],
    }
    assert render(document, PLACE) == {
        "Resource": [
            f"arn:aws:s3:::images-{REGION}-{ACCOUNT}/*",
            f"{REGION}-imagelabeller-test",
            STREAM_ARN,
            "${Literal}",
        ],
        "Untouched": ["*", 3, True],
    }


@pytest.mark.parametrize(
    "value",
    [
        {"Fn::GetAtt": ["ApiHandlerRole", "Arn"]},
        {"Fn::If": ["IsProd", "a", "b"]},
        {"Ref": "ApiHandlerRole"},
        {"Fn::Sub": "${ApiHandlerRole.Arn}"},
        {"Fn::ImportValue": "imagelabeller-nowhere-Arn"},
    ],
    ids=["GetAtt", "If", "Ref to a resource", "Sub of a resource", "an export not there"],
)
def test_what_only_cloudformation_can_resolve_is_refused(value: dict[str, Any]) -> None:
    with pytest.raises(UnresolvedIntrinsic):
        render({"Statement": [{"Resource": value}]}, PLACE)


@pytest.mark.parametrize("policy", sorted((PROJECT_DIR / ".chalice").glob("policy-*.json")))
def test_every_policy_file_renders_to_concrete_arns_of_the_stage(policy: Path) -> None:
    rendered = json.dumps(render(read(policy), PLACE))
    assert "Fn::" not in rendered and "${" not in rendered and '"Ref"' not in rendered
    assert f":{REGION}:{ACCOUNT}:" in rendered or f"-{REGION}-{ACCOUNT}" in rendered


# --- the config written for `chalice deploy` ------------------------------------------------


def test_the_merge_templates_functions_are_named_as_chalice_names_them() -> None:
    functions = merge_template_functions(read(PROJECT_DIR / ".chalice" / "merge-template.json"))
    assert sorted(function.name for function in functions) == sorted(FUNCTIONS)


def test_configure_gives_chalice_deploy_the_environment_the_merge_template_gives(
    chalice_dir: Path,
) -> None:
    configured(chalice_dir)

    # app.py reads the stream ARN at import; Chalice imports it with the stage's variables.
    stage_variables = chalice_view(chalice_dir).environment_variables
    assert stage_variables["IMAGELABELLER_STREAM_ARN"] == STREAM_ARN
    assert stage_variables["IMAGELABELLER_BUCKET"] == f"open-devops-images-{REGION}-{ACCOUNT}"
    merge_template = read(chalice_dir / "merge-template.json")
    for function in merge_template_functions(merge_template):
        variables = chalice_view(chalice_dir, function.name).environment_variables
        assert {name: variables[name] for name in function.environment} == render(
            dict(function.environment), PLACE
        ), function.name
        assert variables["IMAGELABELLER_BACKEND"] == "aws"  # the static settings stay
    callbacks = chalice_view(chalice_dir, "deliver_callbacks").environment_variables
    assert (
        callbacks["IMAGELABELLER_WEBHOOK_SECRET_ARN"]
        == EXPORTS["imagelabeller-secrets-WebhookSecretArn"]
    )
    assert "IMAGELABELLER_WEBHOOK_SECRET_ARN" not in stage_variables  # that function's only


def test_only_the_labelling_function_gets_the_model_layer(chalice_dir: Path) -> None:
    configured(chalice_dir)
    layers = {name: chalice_view(chalice_dir, name).layers for name in FUNCTIONS}
    assert layers == {
        "api_handler": None,
        "label_new_images": [LAYER_ARN],
        "register_uploads": None,
        "deliver_callbacks": None,
    }


def test_each_function_gets_its_policy_file_rendered_for_the_stage(chalice_dir: Path) -> None:
    before = read(chalice_dir / "config.json")["stages"]["test"]["lambda_functions"]
    configured(chalice_dir)

    for name in FUNCTIONS:
        policy_file = chalice_view(chalice_dir, name).iam_policy_file
        source = before[name]["iam_policy_file"]
        assert policy_file == f"{RENDERED_FOLDER}/test/{source}"
        assert read(chalice_dir / policy_file) == render(read(chalice_dir / source), PLACE)
    # The intrinsic files, which scripts/deploy packages, are unchanged.
    for source in {entry["iam_policy_file"] for entry in before.values()}:
        assert read(chalice_dir / source) == read(PROJECT_DIR / ".chalice" / source)


def test_the_api_function_may_write_to_the_log_group_of_chalices_name_for_it(
    chalice_dir: Path,
) -> None:
    """Chalice names the API's function `<app>-<stage>`, without `-api_handler`, and so
    does the merge template: one name, one log group, whichever way the stage is deployed."""
    configured(chalice_dir)
    policy = read(chalice_dir / chalice_view(chalice_dir, "api_handler").iam_policy_file)
    (logs,) = [s for s in policy["Statement"] if "logs:PutLogEvents" in s["Action"]]
    assert logs["Resource"] == (
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/imagelabeller-test:*"
    )


def test_configuring_twice_gives_the_same_config(chalice_dir: Path) -> None:
    first = configured(chalice_dir)
    assert configured(chalice_dir) == first


def test_other_stages_are_left_alone(chalice_dir: Path) -> None:
    before = read(chalice_dir / "config.json")
    after = configured(chalice_dir)
    assert {k: v for k, v in after["stages"].items() if k != "test"} == {
        k: v for k, v in before["stages"].items() if k != "test"
    }


def test_reset_gives_back_the_committed_config_even_after_an_emulators_overrides(
    chalice_dir: Path,
) -> None:
    before = read(chalice_dir / "config.json")
    configured(chalice_dir, FUNCTION_OVERRIDES)
    configured(chalice_dir, FUNCTION_OVERRIDES)  # a second run must not lose the original
    variables = read(chalice_dir / "config.json")["stages"]["test"]["environment_variables"]
    assert variables["IMAGELABELLER_ALLOW_PRIVATE_URLS"] == "true"

    after = reset_stage(
        read(chalice_dir / "config.json"),
        "test",
        read(chalice_dir / "merge-template.json"),
        chalice_dir,
    )

    assert after == before


def test_scripts_deploy_refuses_to_package_a_stage_configured_for_chalice_deploy(
    chalice_dir: Path,
) -> None:
    assert configured_for_chalice_deploy("test", chalice_dir / "config.json") is None
    configured(chalice_dir)
    refusal = configured_for_chalice_deploy("test", chalice_dir / "config.json")
    assert refusal is not None and "scripts/configure-stage test --reset" in refusal
    assert configured_for_chalice_deploy("staging", chalice_dir / "config.json") is None


def test_the_committed_config_is_not_configured_for_chalice_deploy() -> None:
    for stage in read(PROJECT_DIR / ".chalice" / "config.json")["stages"]:
        assert configured_for_chalice_deploy(stage) is None, stage


def test_a_missing_export_refuses_and_names_it(chalice_dir: Path) -> None:
    place = Place(REGION, ACCOUNT, "aws", "imagelabeller-test", {}, PLACE.parameters)
    with pytest.raises(ConfigureRefused, match="imagelabeller-dynamodb-StreamArn"):
        configure_stage(
            read(chalice_dir / "config.json"),
            "test",
            read(chalice_dir / "merge-template.json"),
            place,
            chalice_dir,
        )


# --- after `chalice deploy` -----------------------------------------------------------------


def test_the_stream_mapping_gets_the_merge_templates_failure_handling() -> None:
    merge_template = read(PROJECT_DIR / ".chalice" / "merge-template.json")
    settings = stream_mapping_settings(merge_template, PLACE)
    assert "Stream" not in settings and "StartingPosition" not in settings
    assert settings["DestinationConfig"] == {
        "OnFailure": {"Destination": EXPORTS["imagelabeller-dynamodb-LabellingFailedQueueArn"]}
    }
    for name in ("MaximumRetryAttempts", "BisectBatchOnFunctionError", "FilterCriteria"):
        assert name in settings, name
