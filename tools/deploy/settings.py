"""What a deploy knows about a stage.

Two sources, each value in one of them only:

- `.chalice/config.json`: which stages exist, their region (`IMAGELABELLER_AWS_REGION`),
  their labeller (`IMAGELABELLER_LABELLER`), their model (`IMAGELABELLER_MODEL`, the
  app's default when unset), the endpoint name, the tables (`IMAGELABELLER_TABLE`,
  `IMAGELABELLER_LABEL_INDEX_TABLE`) and whether the original's routes stay open without
  a key (`IMAGELABELLER_LEGACY_ROUTES_OPEN`), read as the functions read them
  (chalicelib/config.py);
- `tools/deploy/stages.json`: the stack names and templates, the SageMaker endpoint's instance
  and the JumpStart model per region, and each stage's alarm email.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.config import DEFAULT_MODEL, MODEL_NAMES, ConfigError, Settings

PROJECT_DIR = Path(__file__).resolve().parents[2]
CHALICE_CONFIG = PROJECT_DIR / ".chalice" / "config.json"
DEPLOY_SETTINGS = Path(__file__).resolve().with_name("stages.json")

# Stages that run only on a developer's machine, under `chalice local`.
NEVER_DEPLOYED = ("local", "local-aws")
# Function names are `<stack name>-<function>`; Lambda allows 64 characters.
LONGEST_FUNCTION_SUFFIX = "-deliver_callbacks"
MAX_APP_STACK_NAME = 64 - len(LONGEST_FUNCTION_SUFFIX)
STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
STACK_KEYS = ("sagemaker", "s3", "dynamodb", "secrets", "artifacts", "layer", "app", "alarms")
LABELLERS = ("onnx", "sagemaker")


class StageRefused(Exception):
    """This stage cannot be deployed as configured; nothing was called."""


@dataclass(frozen=True)
class StackDefinition:
    name: str
    template: Path | None  # None: the deploy builds the template itself
    capabilities: tuple[str, ...]


@dataclass(frozen=True)
class JumpStartModel:
    model_id: str
    container_image: str
    model_data_url: str
    # The model data URL checked against the JumpStart catalogue by a person: nothing
    # offline can (the container image is checked against the SDK's data, jumpstart.py).
    model_data_confirmed: bool


@dataclass(frozen=True)
class SageMakerEndpoint:
    name: str
    instance_type: str
    instance_count: int
    model: JumpStartModel


@dataclass(frozen=True)
class StageSettings:
    name: str
    region: str
    labeller: str
    endpoint_name: str  # from config.json; used only when the labeller is sagemaker
    alarm_email: str | None  # None: not decided yet; "": no subscription, on purpose
    stacks: Mapping[str, StackDefinition]
    sagemaker: SageMakerEndpoint | None  # None unless the labeller is sagemaker
    model: str  # the ONNX model the package carries (IMAGELABELLER_MODEL)
    table: str  # the records (IMAGELABELLER_TABLE)
    label_index_table: str  # search entries, claims, API keys (IMAGELABELLER_LABEL_INDEX_TABLE)
    legacy_routes_open: bool  # GET /submit-image and /get-image-label need no key

    @property
    def uses_sagemaker(self) -> bool:
        return self.sagemaker is not None

    def stack(self, key: str) -> StackDefinition:
        return self.stacks[key]


def read_json(path: Path) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise StageRefused(f"cannot read {relative(path)}: {error}") from error
    return loaded


def relative(path: Path) -> str:
    try:
        return str(path.relative_to(PROJECT_DIR))
    except ValueError:
        return str(path)


def deployed_stage_names(chalice_config: Mapping[str, Any] | None = None) -> list[str]:
    """The stages of .chalice/config.json that are deployed, in the file's order."""
    config = chalice_config if chalice_config is not None else read_json(CHALICE_CONFIG)
    return [name for name in config["stages"] if name not in NEVER_DEPLOYED]


def load_stage(
    name: str,
    chalice_config: Mapping[str, Any] | None = None,
    deploy_settings: Mapping[str, Any] | None = None,
) -> StageSettings:
    """The settings of one deployed stage; StageRefused says why a stage cannot be."""
    config = chalice_config if chalice_config is not None else read_json(CHALICE_CONFIG)
    settings = deploy_settings if deploy_settings is not None else read_json(DEPLOY_SETTINGS)
    stages: Mapping[str, Any] = config.get("stages", {})
    if name in NEVER_DEPLOYED:
        raise StageRefused(
            f"stage {name!r} runs only on your machine under `chalice local` and is never "
            f"deployed; deployed stages: {', '.join(deployed_stage_names(config))}"
        )
    if name not in stages:
        raise StageRefused(
            f"unknown stage {name!r}: not in .chalice/config.json; deployed stages: "
            f"{', '.join(deployed_stage_names(config))}"
        )
    variables: Mapping[str, str] = stages[name].get("environment_variables", {})
    region = required_variable(name, variables, "IMAGELABELLER_AWS_REGION")
    labeller = required_variable(name, variables, "IMAGELABELLER_LABELLER")
    if labeller not in LABELLERS:
        raise StageRefused(f"stage {name!r}: IMAGELABELLER_LABELLER is {labeller!r}")
    if variables.get("IMAGELABELLER_ALLOW_PRIVATE_URLS", "false").lower() == "true":
        raise StageRefused(
            f"stage {name!r} sets IMAGELABELLER_ALLOW_PRIVATE_URLS=true; deployed stages must not"
        )
    endpoint_name = variables.get("IMAGELABELLER_SAGEMAKER_ENDPOINT", "")
    model = variables.get("IMAGELABELLER_MODEL", DEFAULT_MODEL).strip().lower()
    if model not in MODEL_NAMES:
        raise StageRefused(
            f"stage {name!r}: IMAGELABELLER_MODEL is {model!r}; expected one of "
            f"{', '.join(MODEL_NAMES)}"
        )
    try:
        app_settings = Settings.from_environ(variables)
    except ConfigError as error:
        raise StageRefused(f"stage {name!r}: {error}") from error
    stage_entry = settings.get("stages", {}).get(name)
    if stage_entry is None:
        raise StageRefused(
            f'stage {name!r} has no entry under "stages" in tools/deploy/stages.json'
        )
    alarm_email = stage_entry.get("alarm_email")
    if alarm_email is not None and not isinstance(alarm_email, str):
        raise StageRefused(f"tools/deploy/stages.json: stages.{name}.alarm_email must be a string")
    stacks = stack_definitions(name, settings)
    sagemaker = (
        sagemaker_endpoint(name, region, endpoint_name, settings)
        if labeller == "sagemaker"
        else None
    )
    return StageSettings(
        name=name,
        region=region,
        labeller=labeller,
        endpoint_name=endpoint_name,
        alarm_email=alarm_email,
        stacks=stacks,
        sagemaker=sagemaker,
        model=model,
        table=app_settings.aws.table,
        label_index_table=app_settings.aws.label_index_table,
        legacy_routes_open=app_settings.legacy_routes_open,
    )


def required_variable(stage: str, variables: Mapping[str, str], variable: str) -> str:
    value = variables.get(variable, "")
    if not value:
        raise StageRefused(f"stage {stage!r} sets no {variable} in .chalice/config.json")
    return value


def stack_definitions(stage: str, settings: Mapping[str, Any]) -> dict[str, StackDefinition]:
    entries: Mapping[str, Any] = settings.get("stacks", {})
    missing = [key for key in STACK_KEYS if key not in entries]
    if missing:
        raise StageRefused(f'tools/deploy/stages.json: "stacks" lacks {", ".join(missing)}')
    stacks = {}
    for key in STACK_KEYS:
        entry = entries[key]
        name = str(entry["name"]).format(stage=stage)
        if not STACK_NAME.match(name):
            raise StageRefused(f"tools/deploy/stages.json: {name!r} is not a valid stack name")
        template = PROJECT_DIR / entry["template"] if entry.get("template") else None
        stacks[key] = StackDefinition(name, template, tuple(entry.get("capabilities", ())))
    app_name = stacks["app"].name
    if len(app_name) > MAX_APP_STACK_NAME:
        raise StageRefused(
            f"the app stack name {app_name!r} has {len(app_name)} characters; at most "
            f"{MAX_APP_STACK_NAME} leave room for `{LONGEST_FUNCTION_SUFFIX}` in Lambda's 64"
        )
    return stacks


def sagemaker_endpoint(
    stage: str, region: str, endpoint_name: str, settings: Mapping[str, Any]
) -> SageMakerEndpoint:
    if not endpoint_name:
        raise StageRefused(
            f"stage {stage!r} labels with sagemaker but sets no IMAGELABELLER_SAGEMAKER_ENDPOINT"
        )
    section: Mapping[str, Any] = settings.get("sagemaker", {})
    model = section.get("regions", {}).get(region)
    if model is None:
        raise StageRefused(
            f"stage {stage!r} labels with sagemaker in {region}, but tools/deploy/stages.json "
            f"has no JumpStart model for {region} under sagemaker.regions"
        )
    return SageMakerEndpoint(
        name=endpoint_name,
        instance_type=str(section["instance_type"]),
        instance_count=int(section["instance_count"]),
        model=JumpStartModel(
            model_id=str(section["jumpstart_model_id"]),
            container_image=str(model["container_image"]),
            model_data_url=str(model["model_data_url"]),
            model_data_confirmed=model.get("model_data_confirmed") is True,
        ),
    )
