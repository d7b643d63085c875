"""`scripts/configure-stage <stage> [--reset | --after-deploy] [--project-dir DIR]`

Before `chalice deploy --stage <stage>`: write the deployed stacks' values into
`.chalice/config.json` (tools/deploy/chalice_stage.py). After it, `--after-deploy` sets
what `chalice deploy` cannot: the stream mapping's failure handling and the REST API's
gateway responses and binary media types, as the merge template has them.

Exit codes: 0 done; 1 an AWS call failed; 2 refused (unknown stage, a stack missing, the
app stack present, an intrinsic that cannot be resolved).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tools.deploy.chalice_stage import (
    ConfigureRefused,
    configure_stage,
    deployed_stack_outputs,
    read_place,
    reset_stage,
)
from tools.deploy.emulator import FUNCTION_OVERRIDES, emulator_from
from tools.deploy.intrinsics import Place, UnresolvedIntrinsic, render
from tools.deploy.model_layer import APP_LAYER_PARAMETER, LAYER_ARN_OUTPUT
from tools.deploy.settings import PROJECT_DIR, StageRefused, StageSettings, load_stage, read_json

EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2
STREAM_FUNCTION = "LabelNewImages"
REST_API = "RestAPI"
# The SAM event's properties that UpdateEventSourceMapping cannot change (or that Chalice
# sets from app.py): everything else of the merge template's event is sent as it is.
NOT_UPDATABLE = {"Stream", "StartingPosition", "StartingPositionTimestamp"}


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/configure-stage",
        description="Make `chalice deploy --stage <stage>` work once the stage's stacks exist "
        "(docs/DEPLOY.md, `chalice deploy`).",
    )
    parser.add_argument("stage")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--reset", action="store_true", help="take out what configure wrote")
    what.add_argument(
        "--after-deploy",
        action="store_true",
        help="after `chalice deploy`: the stream mapping's failure handling, gateway responses",
    )
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=PROJECT_DIR,
        help="the Chalice project whose .chalice/ to write (default: this one)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    chalice_dir = arguments.project_dir.resolve() / ".chalice"
    config_path = chalice_dir / "config.json"
    try:
        config = read_json(config_path)
        merge_template = read_json(chalice_dir / "merge-template.json")
        if arguments.reset:
            write_config(
                config_path, reset_stage(config, arguments.stage, merge_template, chalice_dir)
            )
            print(f"{arguments.stage}: configuration for `chalice deploy` taken out")
            return EXIT_OK
        # The stage as committed: a configured one may hold an emulator's override that
        # load_stage refuses for a deployed stage (IMAGELABELLER_ALLOW_PRIVATE_URLS).
        committed = reset_stage(config, arguments.stage, merge_template, chalice_dir, forget=False)
        stage = load_stage(arguments.stage, committed)
    except (StageRefused, ConfigureRefused) as refusal:
        print(f"configure-stage: refused: {refusal}", file=sys.stderr)
        return EXIT_REFUSED
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if arguments.after_deploy:
            return after_deploy(stage, chalice_dir, merge_template)
        return configure(stage, config, merge_template, chalice_dir)
    except ConfigureRefused as refusal:
        print(f"configure-stage: refused: {refusal}", file=sys.stderr)
        return EXIT_REFUSED
    except (BotoCoreError, ClientError) as failure:
        print(f"configure-stage: failed: {failure}", file=sys.stderr)
        return EXIT_FAILED


def session_and_endpoint() -> tuple[Any, str | None]:
    import boto3

    emulator = emulator_from()
    session = boto3.session.Session()
    if emulator:  # MiniStack's API Gateway answers (tools/deploy/chalice_on_emulator.py)
        from tools.deploy.chalice_on_emulator import drop_empty_compression_size

        session.events.register("before-parse.api-gateway", drop_empty_compression_size)
    return session, emulator.endpoint if emulator else None


def configure(
    stage: StageSettings,
    config: Mapping[str, Any],
    merge_template: Mapping[str, Any],
    chalice_dir: Path,
) -> int:
    stage_name, region = stage.name, stage.region
    session, endpoint = session_and_endpoint()
    cloudformation = session.client("cloudformation", region_name=region, endpoint_url=endpoint)
    app_stack = stage.stack("app").name
    if deployed_stack_outputs(cloudformation, app_stack) is not None:
        raise ConfigureRefused(
            f"the app stack {app_stack} exists in {region}: its functions have the names "
            f"`chalice deploy --stage {stage_name}` gives its own, and their event sources. A "
            "stage is deployed by one path at a time: delete the stack first (`aws "
            f"cloudformation delete-stack --region {region} --stack-name {app_stack}`; the "
            "data stacks stay), or keep deploying it with scripts/deploy"
        )
    layer_stack = stage.stack("layer").name
    layer_outputs = deployed_stack_outputs(cloudformation, layer_stack) or {}
    if LAYER_ARN_OUTPUT not in layer_outputs:
        raise ConfigureRefused(
            f"no model layer in {region}: the stack {layer_stack} has no output "
            f"{LAYER_ARN_OUTPUT}. Deploy it with `scripts/deploy {stage_name}` (its functions "
            "step) first"
        )
    place = read_place(session, region, app_stack, endpoint)
    place = Place(
        region=place.region,
        account_id=place.account_id,
        partition=place.partition,
        stack_name=place.stack_name,
        exports=place.exports,
        parameters={APP_LAYER_PARAMETER: layer_outputs[LAYER_ARN_OUTPUT]},
    )
    # An emulator's functions fetch the system tests' photos from loopback, as with
    # scripts/deploy (tools/deploy/emulator.py); --reset puts the committed value back.
    overrides = FUNCTION_OVERRIDES if endpoint else {}
    updated = configure_stage(config, stage_name, merge_template, place, chalice_dir, overrides)
    write_config(chalice_dir / "config.json", updated)
    print(
        f"{stage_name}: .chalice/config.json configured for `chalice deploy --stage {stage_name}` "
        f"in {region} (account {place.account_id}); policies in .chalice/rendered/{stage_name}/. "
        f"After the deploy: scripts/configure-stage {stage_name} --after-deploy"
    )
    return EXIT_OK


def write_config(path: Path, config: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


# --- after `chalice deploy` ----------------------------------------------------------------


def after_deploy(stage: StageSettings, chalice_dir: Path, merge_template: Mapping[str, Any]) -> int:
    stage_name, region = stage.name, stage.region
    deployed_path = chalice_dir / "deployed" / f"{stage_name}.json"
    if not deployed_path.is_file():
        raise ConfigureRefused(
            f"{deployed_path} is missing: run `chalice deploy --stage {stage_name}` first"
        )
    resources = json.loads(deployed_path.read_text(encoding="utf-8"))["resources"]
    session, endpoint = session_and_endpoint()
    config = read_json(chalice_dir / "config.json")
    place = read_place(session, region, stage.stack("app").name, endpoint)
    lambda_client = session.client("lambda", region_name=region, endpoint_url=endpoint)
    for resource in resources:
        if resource.get("resource_type") == "dynamodb_event":  # Chalice's name for it
            settings = stream_mapping_settings(merge_template, place)
            lambda_client.update_event_source_mapping(UUID=resource["event_uuid"], **settings)
            print(f"stream mapping {resource['event_uuid']}: {', '.join(sorted(settings))}")
    rest_api = next((r for r in resources if r.get("resource_type") == "rest_api"), None)
    if rest_api is not None:
        apigateway = session.client("apigateway", region_name=region, endpoint_url=endpoint)
        api_stage = config["stages"][stage_name].get("api_gateway_stage", "api")
        set_gateway_responses(apigateway, rest_api["rest_api_id"], merge_template, api_stage)
        print(f"REST API {rest_api['rest_api_id']}: gateway responses and binary media types")
    return EXIT_OK


def stream_mapping_settings(merge_template: Mapping[str, Any], place: Place) -> dict[str, Any]:
    """UpdateEventSourceMapping's arguments for the merge template's stream event."""
    function = merge_template["Resources"][STREAM_FUNCTION]["Properties"]
    (event,) = function.get("Events", {}).values()
    try:
        properties = render(event.get("Properties", {}), place)
    except UnresolvedIntrinsic as error:
        raise ConfigureRefused(str(error)) from error
    settings = {key: value for key, value in properties.items() if key not in NOT_UPDATABLE}
    on_failure = settings.get("DestinationConfig", {}).get("OnFailure")
    if on_failure:  # SAM's `Type` (SQS, SNS) is not part of Lambda's API
        settings["DestinationConfig"] = {"OnFailure": {"Destination": on_failure["Destination"]}}
    return settings


def set_gateway_responses(
    apigateway: Any, rest_api_id: str, merge_template: Mapping[str, Any], api_stage: str
) -> None:
    properties = merge_template["Resources"][REST_API]["Properties"]
    for response_type, response in properties.get("GatewayResponses", {}).items():
        headers = response.get("ResponseParameters", {}).get("Headers", {})
        arguments: dict[str, Any] = {
            "restApiId": rest_api_id,
            "responseType": response_type,
            "responseParameters": {
                f"gatewayresponse.header.{name}": value for name, value in headers.items()
            },
            "responseTemplates": response.get("ResponseTemplates", {}),
        }
        if "StatusCode" in response:
            arguments["statusCode"] = response["StatusCode"]
        apigateway.put_gateway_response(**arguments)
    # Chalice's swagger declares them (x-amazon-apigateway-binary-media-types), which AWS
    # reads on import; an emulator may not. Adding the missing ones is harmless on AWS.
    present = set(apigateway.get_rest_api(restApiId=rest_api_id).get("binaryMediaTypes", []))
    missing = [
        media
        for media in properties.get("BinaryMediaTypes", [])
        if media.replace("~1", "/") not in present
    ]
    if missing:
        apigateway.update_rest_api(
            restApiId=rest_api_id,
            patchOperations=[
                {"op": "add", "path": f"/binaryMediaTypes/{media}"} for media in missing
            ],
        )
    apigateway.create_deployment(restApiId=rest_api_id, stageName=api_stage)


if __name__ == "__main__":
    sys.exit(main())
