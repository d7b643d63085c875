"""The steps of a deploy, in this order:

1. sagemaker: the model endpoint stack (only for stages whose labeller is sagemaker);
2. s3: the image bucket stack;
3. dynamodb: the label table stack (its stream feeds the labelling function);
   then secrets: the webhook secret's stack (deliver_callbacks reads it by its ARN);
4. functions: `chalice package`, the model layer (its own stack), the upload to the
   artifacts bucket, the app stack;
   then migrate: the stage's tables moved to tenants (issue 15), once the functions that
   read only the new formats are live;
5. alarms: the alarms stack, which watches the app stack (and the endpoint);
6. system-tests: `pytest tests/system/test_api.py` against the deployed API, with an API
   key made for the run and revoked after it.

The original ran the system tests before the alarms. The alarms come first here, so that
functions whose system tests fail are watched all the same while they stay live.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chalicelib.config import model_file
from tools.deploy.actions import (
    Action,
    CheckIdentity,
    DeployStack,
    InlineTemplate,
    PackageFunctions,
    Produced,
    StackOutput,
    TemplateAt,
    TemplateFile,
    UploadPackage,
)
from tools.deploy.artifacts import artifacts_template_body
from tools.deploy.emulator import ALARM_OVERRIDES, Emulator
from tools.deploy.jumpstart import model_problems
from tools.deploy.migration import MigrateToTenants
from tools.deploy.model_layer import (
    APP_LAYER_PARAMETER,
    LAYER_ARN_OUTPUT,
    BuildModelLayer,
    UploadModelLayer,
    layer_template_body,
)
from tools.deploy.regions import missing_services, services_used
from tools.deploy.settings import (
    PROJECT_DIR,
    StackDefinition,
    StageRefused,
    StageSettings,
    relative,
)
from tools.deploy.system_tests import RunSystemTests, SystemTestKey

STEP_ORDER = (
    "sagemaker",
    "s3",
    "dynamodb",
    "secrets",
    "functions",
    "migrate",
    "alarms",
    "system-tests",
)
# Steps that deploy one template of cloudformation/, named as their stack in stages.json.
TEMPLATE_STEPS = ("sagemaker", "s3", "dynamodb", "secrets", "alarms")
OUT_DIR = PROJECT_DIR / "out"
APP_URL_OUTPUT = "EndpointURL"  # Chalice's SAM template has this output
ARTIFACTS_BUCKET_OUTPUT = "BucketName"


@dataclass(frozen=True)
class Step:
    name: str
    summary: str
    actions: tuple[Action, ...]


def build_plan(
    stage: StageSettings, out_dir: Path = OUT_DIR, emulator: Emulator | None = None
) -> list[Step]:
    steps = [
        s3_step(stage),
        dynamodb_step(stage),
        secrets_step(stage),
        functions_step(stage, out_dir / stage.name),
        migrate_step(stage),
        alarms_step(stage, emulator),
        system_tests_step(stage),
    ]
    if stage.uses_sagemaker:
        steps.insert(0, sagemaker_step(stage))
    return steps


def preflight(stage: StageSettings) -> Action:
    return CheckIdentity(stage.region)


def select_steps(steps: Sequence[Step], only: Sequence[str] | None) -> list[Step]:
    """The steps named in `only` (all when None), still in the plan's order."""
    if not only:
        return list(steps)
    planned = [step.name for step in steps]
    unknown = [name for name in only if name not in planned]
    if unknown:
        raise StageRefused(
            f"no step {', '.join(unknown)} in this stage's plan; its steps: {', '.join(planned)}"
        )
    return [step for step in steps if step.name in only]


def readiness_problems(stage: StageSettings, steps: Sequence[Step]) -> list[str]:
    """What must be fixed before these steps can run for real (a dry run only reports)."""
    names = {step.name for step in steps}
    problems = [
        f"{stage.region} does not offer {service} (botocore's endpoint data), which this stage uses"
        for service in missing_services(stage.region, services_used(stage.uses_sagemaker))
    ]
    if "sagemaker" in names and stage.sagemaker:
        problems.extend(model_problems(stage.region, stage.sagemaker.model))
    if "alarms" in names and stage.alarm_email is None:
        problems.append(
            f"tools/deploy/stages.json: stages.{stage.name}.alarm_email is not set: the address "
            'the alarm topic mails (it must confirm the subscription), or "" for none'
        )
    if "functions" in names and not model_file(stage.model).is_file():
        problems.append(f"{relative(model_file(stage.model))} is missing: run `make setup`")
    for step in steps:
        if step.name in TEMPLATE_STEPS:
            template = stage.stack(step.name).template
            if template is not None and not template.is_file():
                problems.append(f"{relative(template)} is missing")
    return problems


def tags(stage: StageSettings) -> dict[str, str]:
    return {"project": "imagelabeller", "stage": stage.name}


def template_stack(
    stage: StageSettings,
    stack: StackDefinition,
    parameters: dict[str, str] | None = None,
    on_create: dict[str, str] | None = None,
) -> DeployStack:
    assert stack.template is not None, f"{stack.name} has no template file"
    return DeployStack(
        region=stage.region,
        stack=stack.name,
        template=TemplateFile(stack.template),
        capabilities=stack.capabilities,
        tags=tags(stage),
        parameters=dict(parameters or {}),
        on_create=dict(on_create or {}),
    )


def sagemaker_step(stage: StageSettings) -> Step:
    endpoint = stage.sagemaker
    assert endpoint is not None
    stack = stage.stack("sagemaker")
    parameters = {
        "ContainerImage": endpoint.model.container_image,
        "ModelDataUrl": endpoint.model.model_data_url,
        "InstanceType": endpoint.instance_type,
        "InstanceCount": str(endpoint.instance_count),
        "EndpointName": endpoint.name,
    }
    summary = f"the SageMaker endpoint {endpoint.name}: stack {stack.name}"
    return Step("sagemaker", summary, (template_stack(stage, stack, parameters),))


def s3_step(stage: StageSettings) -> Step:
    stack = stage.stack("s3")
    return Step("s3", f"the image bucket: stack {stack.name}", (template_stack(stage, stack),))


def dynamodb_step(stage: StageSettings) -> Step:
    stack = stage.stack("dynamodb")
    summary = f"the label table and its stream: stack {stack.name}"
    # Deletion protection would stop a failed first create's rollback from deleting its
    # tables (RetainExceptOnCreate), leaving them to make the next try fail; it is switched
    # on by the update that follows a successful create.
    deploy = template_stack(
        stage, stack, {"DeletionProtection": "true"}, on_create={"DeletionProtection": "false"}
    )
    return Step("dynamodb", summary, (deploy,))


def secrets_step(stage: StageSettings) -> Step:
    stack = stage.stack("secrets")
    summary = f"the webhook signing secret: stack {stack.name}"
    return Step("secrets", summary, (template_stack(stage, stack),))


def functions_step(stage: StageSettings, package_dir: Path) -> Step:
    artifacts_stack = stage.stack("artifacts")
    app_stack = stage.stack("app")
    bucket = StackOutput(artifacts_stack.name, ARTIFACTS_BUCKET_OUTPUT)
    template_url = Produced("app-template-url", "URL of the uploaded packaged.json")
    layer_stack = stage.stack("layer")
    layer_key = Produced("model-layer-key", "key of the uploaded model-layer.zip")
    actions: tuple[Action, ...] = (
        DeployStack(
            region=stage.region,
            stack=artifacts_stack.name,
            template=InlineTemplate("inline: tools/deploy/artifacts.py", artifacts_template_body()),
            capabilities=artifacts_stack.capabilities,
            tags=tags(stage),
        ),
        PackageFunctions(stage.name, stage.region, package_dir),
        BuildModelLayer(package_dir, stage.model),
        UploadModelLayer(stage.region, bucket, package_dir, layer_key),
        DeployStack(
            region=stage.region,
            stack=layer_stack.name,
            template=InlineTemplate("inline: tools/deploy/model_layer.py", layer_template_body()),
            capabilities=layer_stack.capabilities,
            tags=tags(stage),
            parameters={"ContentBucket": bucket, "ContentKey": layer_key},
        ),
        UploadPackage(stage.name, stage.region, bucket, package_dir, template_url),
        DeployStack(
            region=stage.region,
            stack=app_stack.name,
            template=TemplateAt(template_url),
            capabilities=app_stack.capabilities,
            tags=tags(stage),
            parameters={APP_LAYER_PARAMETER: StackOutput(layer_stack.name, LAYER_ARN_OUTPUT)},
        ),
    )
    summary = (
        f"package with chalice, the model layer (stack {layer_stack.name}), upload, deploy "
        f"the app stack {app_stack.name}"
    )
    return Step("functions", summary, actions)


def migrate_step(stage: StageSettings) -> Step:
    summary = (
        f"move what {stage.table} and {stage.label_index_table} hold from before tenants to "
        "the legacy tenant"
    )
    migrate = MigrateToTenants(stage.region, stage.table, stage.label_index_table)
    return Step("migrate", summary, (migrate,))


def system_tests_step(stage: StageSettings) -> Step:
    app_stack = stage.stack("app")
    base_url = StackOutput(app_stack.name, APP_URL_OUTPUT)
    key = SystemTestKey(stage.name, stage.region, stage.label_index_table)
    run = RunSystemTests(base_url, key, stage.legacy_routes_open)
    return Step(
        "system-tests", "the system tests against the deployed API, with a key of their own", (run,)
    )


def alarms_step(stage: StageSettings, emulator: Emulator | None = None) -> Step:
    stack = stage.stack("alarms")
    parameters = {
        "AppStackName": stage.stack("app").name,
        "EndpointName": stage.sagemaker.name if stage.sagemaker else "",
        "AlarmEmail": "<not set>" if stage.alarm_email is None else stage.alarm_email,
        **(ALARM_OVERRIDES if emulator else {}),
    }
    summary = f"the alarms: stack {stack.name}"
    return Step("alarms", summary, (template_stack(stage, stack, parameters),))
