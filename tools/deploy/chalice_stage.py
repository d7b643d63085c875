"""`scripts/configure-stage <stage>`: make `chalice deploy --stage <stage>` work.

scripts/deploy deploys the functions as a CloudFormation stack, which resolves the
intrinsics of `.chalice/merge-template.json` and of the policy files. `chalice deploy`
resolves none of them, so this reads the deployed stacks of the stage's region and writes
concrete values into `.chalice/config.json` → `stages.<stage>`:

- the environment variables the merge template gives the functions (bucket, stream ARN,
  queue URL, secret ARN, ...). Those every function gets with one value go to the stage
  level, where `chalice deploy` also sees them when it imports app.py (STREAM_ARN is read
  at import, for the stream's event source); the others to the function;
- the model layer's version ARN (`layers` of the functions the merge template gives it);
- per function, `iam_policy_file` pointing at `.chalice/rendered/<stage>/<policy file>`,
  the stage's policy file with its intrinsics resolved. `.chalice/rendered/` is git-ignored:
  it holds the account id.

Function names agree without help: Chalice names them `<app>-<stage>-<function>`, the
merge template `<app stack>-<function>`, and the app stack is `imagelabeller-<stage>`;
only the API's differs (Chalice: `<app>-<stage>`), and its policy's log group is rendered
to match. They are the same functions, though: a stage is deployed by one path at a
time. While the app stack exists, this refuses: `chalice deploy` would take its functions
over and then fail to create the event sources the stack's functions already have.

`--reset` takes all of it out again; scripts/deploy refuses to package a stage whose policy
files are the rendered ones (`chalice package` would copy the concrete ARNs into the app
stack's template). `--after-deploy`, after `chalice deploy`, sets what Chalice cannot:
the stream mapping's failure handling and the API's gateway responses (docs/DEPLOY.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.deploy.intrinsics import Place, UnresolvedIntrinsic, render
from tools.deploy.settings import PROJECT_DIR

# Chalice names the API's function `<app>-<stage>`, and the merge template gives it the
# same name (the app stack's: `imagelabeller-<stage>`), so the alarms watch it either way.
API_FUNCTION = "api_handler"
API_FUNCTION_NAME = "${AWS::StackName}"
RENDERED_FOLDER = "rendered"  # under .chalice/; Chalice reads iam_policy_file from there
RECORD_FILE = "configure.json"  # what configure replaced, for --reset
SERVERLESS_FUNCTION_PREFIX = "${AWS::StackName}-"


class ConfigureRefused(Exception):
    """The stage cannot be configured for `chalice deploy` now; the message says why."""


@dataclass(frozen=True)
class FunctionSettings:
    """What the merge template gives one function, by its Chalice name."""

    name: str  # Chalice's: api_handler, label_new_images, ...
    logical_id: str  # in the SAM template: APIHandler, LabelNewImages, ...
    environment: Mapping[str, Any]
    layers: Sequence[Any]


def merge_template_functions(merge_template: Mapping[str, Any]) -> list[FunctionSettings]:
    """The functions of the merge template, named as Chalice names them.

    A function's Chalice name is its FunctionName's suffix: `${AWS::StackName}-<name>`,
    but for the API's function, named `${AWS::StackName}` as Chalice names it.
    """
    functions = []
    for logical_id, resource in merge_template.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        function_name = properties.get("FunctionName", {})
        sub = function_name.get("Fn::Sub") if isinstance(function_name, dict) else None
        if sub == API_FUNCTION_NAME:
            name = API_FUNCTION
        elif isinstance(sub, str) and sub.startswith(SERVERLESS_FUNCTION_PREFIX):
            name = sub.removeprefix(SERVERLESS_FUNCTION_PREFIX)
        else:
            continue
        functions.append(
            FunctionSettings(
                name=name,
                logical_id=logical_id,
                environment=properties.get("Environment", {}).get("Variables", {}),
                layers=properties.get("Layers", []),
            )
        )
    return functions


def source_policy_file(policy_file: str) -> str:
    """The policy file a (possibly rendered) `iam_policy_file` value comes from."""
    return Path(policy_file).name if policy_file.startswith(f"{RENDERED_FOLDER}/") else policy_file


def rendered_policy_file(stage: str, policy_file: str) -> str:
    return f"{RENDERED_FOLDER}/{stage}/{source_policy_file(policy_file)}"


def configure_stage(
    config: Mapping[str, Any],
    stage: str,
    merge_template: Mapping[str, Any],
    place: Place,
    chalice_dir: Path,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The config with `stages.<stage>` set for `chalice deploy`; writes the rendered
    policy files into `chalice_dir/rendered/<stage>/`.

    `overrides` are environment variables to set at the stage level on top (an emulator's;
    tools/deploy/emulator.py); the values they replace are recorded for --reset.
    """
    updated: dict[str, Any] = json.loads(json.dumps(config))
    entry = stage_entry(updated, stage)
    functions = merge_template_functions(merge_template)
    lambda_functions = entry.setdefault("lambda_functions", {})
    try:
        values = {
            function.name: {
                name: str(render(value, place)) for name, value in function.environment.items()
            }
            for function in functions
        }
        layers = {function.name: render(list(function.layers), place) for function in functions}
        policies = {
            name: (settings["iam_policy_file"], render_policy(chalice_dir, settings, place))
            for name, settings in lambda_functions.items()
            if "iam_policy_file" in settings
        }
    except UnresolvedIntrinsic as error:
        raise ConfigureRefused(f"stage {stage!r}: {error}") from error
    shared = shared_values(list(values.values()))
    stage_variables = entry.setdefault("environment_variables", {})
    stage_variables.update(shared)
    replaced = {name: stage_variables.get(name) for name in overrides or {}}
    stage_variables.update(overrides or {})
    for function in functions:
        settings = lambda_functions.setdefault(function.name, {})
        own = {name: value for name, value in values[function.name].items() if name not in shared}
        if own:
            settings.setdefault("environment_variables", {}).update(own)
        if layers[function.name]:
            settings["layers"] = layers[function.name]
    folder = chalice_dir / RENDERED_FOLDER / stage
    folder.mkdir(parents=True, exist_ok=True)
    for name, (policy_file, policy) in policies.items():
        target = rendered_policy_file(stage, policy_file)
        (chalice_dir / target).write_text(json.dumps(policy, indent=2) + "\n", encoding="utf-8")
        lambda_functions[name]["iam_policy_file"] = target
    record = folder / RECORD_FILE
    if not record.exists():  # a second configure must not record its own values
        record.write_text(json.dumps({"replaced": replaced}, indent=2) + "\n", encoding="utf-8")
    return updated


def render_policy(chalice_dir: Path, settings: Mapping[str, Any], place: Place) -> Any:
    source = chalice_dir / source_policy_file(str(settings["iam_policy_file"]))
    return render(json.loads(source.read_text(encoding="utf-8")), place)


def shared_values(per_function: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """The variables every function gets, with the same value."""
    if not per_function:
        return {}
    first, *others = per_function
    return {
        name: value
        for name, value in first.items()
        if all(other.get(name) == value for other in others)
    }


def reset_stage(
    config: Mapping[str, Any],
    stage: str,
    merge_template: Mapping[str, Any],
    chalice_dir: Path,
    forget: bool = True,
) -> dict[str, Any]:
    """The config without what configure_stage wrote for `stage`; `forget` deletes the
    record of what it replaced (False: only look at the stage as committed)."""
    updated: dict[str, Any] = json.loads(json.dumps(config))
    entry = stage_entry(updated, stage)
    functions = merge_template_functions(merge_template)
    written = {name for function in functions for name in function.environment}
    record_path = chalice_dir / RENDERED_FOLDER / stage / RECORD_FILE
    record = json.loads(record_path.read_text("utf-8")) if record_path.exists() else {}
    stage_variables = entry.get("environment_variables", {})
    for name in written:
        stage_variables.pop(name, None)
    for name, original in record.get("replaced", {}).items():
        if original is None:
            stage_variables.pop(name, None)
        else:
            stage_variables[name] = original
    for function in functions:
        settings = entry.get("lambda_functions", {}).get(function.name)
        if settings is None:
            continue
        variables = settings.get("environment_variables", {})
        for name in written:
            variables.pop(name, None)
        if "environment_variables" in settings and not variables:
            del settings["environment_variables"]
        if function.layers:
            settings.pop("layers", None)
    for settings in entry.get("lambda_functions", {}).values():
        if "iam_policy_file" in settings:
            settings["iam_policy_file"] = source_policy_file(settings["iam_policy_file"])
    if forget:
        record_path.unlink(missing_ok=True)
    return updated


def stage_entry(config: dict[str, Any], stage: str) -> dict[str, Any]:
    stages = config.get("stages", {})
    if stage not in stages:
        raise ConfigureRefused(f"unknown stage {stage!r}: not in .chalice/config.json")
    entry: dict[str, Any] = stages[stage]
    return entry


def configured_for_chalice_deploy(stage: str, config_path: Path | None = None) -> str | None:
    """Why scripts/deploy must not package `stage` now (None: it may).

    After configure, the stage's policy files are the rendered ones, and `chalice package`
    would copy their concrete ARNs into the app stack's template.
    """
    path = config_path or PROJECT_DIR / ".chalice" / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    functions = config.get("stages", {}).get(stage, {}).get("lambda_functions", {})
    rendered = sorted(
        settings["iam_policy_file"]
        for settings in functions.values()
        if str(settings.get("iam_policy_file", "")).startswith(f"{RENDERED_FOLDER}/")
    )
    if not rendered:
        return None
    return (
        f".chalice/config.json: stage {stage!r} is configured for `chalice deploy` (its "
        f"policy files are {', '.join(rendered)}). Run `scripts/configure-stage {stage} "
        "--reset` first: scripts/deploy packages the policy files with their intrinsics"
    )


# --- reading the deployed stacks ----------------------------------------------------------


def read_place(session: Any, region: str, stack_name: str, endpoint: str | None) -> Place:
    """The account, partition and exports of the region, as the deploying identity sees them."""
    sts = session.client("sts", region_name=region, endpoint_url=endpoint)
    identity = sts.get_caller_identity()
    cloudformation = session.client("cloudformation", region_name=region, endpoint_url=endpoint)
    exports: dict[str, str] = {}
    for page in cloudformation.get_paginator("list_exports").paginate():
        exports.update({export["Name"]: export["Value"] for export in page.get("Exports", [])})
    return Place(
        region=region,
        account_id=str(identity["Account"]),
        partition=str(identity["Arn"]).split(":")[1],
        stack_name=stack_name,
        exports=exports,
    )


def deployed_stack_outputs(cloudformation: Any, name: str) -> dict[str, str] | None:
    """A stack's outputs; None when it does not exist (or only its deletion is left)."""
    from botocore.exceptions import ClientError

    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise
    if not stacks or stacks[0]["StackStatus"] == "DELETE_COMPLETE":
        return None
    return {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}
