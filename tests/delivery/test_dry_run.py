"""`scripts/deploy <stage> --dry-run`: the original's order, the stage's region, no AWS call.

Every run here has no credentials and AWS_ENDPOINT_URL on a closed port, so any AWS call
the dry run tried would fail it.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.delivery.support import PROJECT_DIR, clean_environment, run_deploy
from tests.support import free_port

CONFIG = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text(encoding="utf-8"))
LOCAL_STAGES = ("local", "local-aws")
DEPLOYED_STAGES = [name for name in CONFIG["stages"] if name not in LOCAL_STAGES]
# The original's order, the alarms before the system tests, and issue 15's migration of the
# tables right after the functions.
STEP_ORDER = [
    "sagemaker",
    "s3",
    "dynamodb",
    "secrets",
    "functions",
    "migrate",
    "alarms",
    "system-tests",
]
STEP_LINE = re.compile(r"^step (\d+)/(\d+) (\S+): ")
AWS_LINE = re.compile(r"^(?:first: |\s+)aws (\S+) (\S+) region=(\S+)")


def variables(stage: str) -> dict[str, str]:
    found: dict[str, str] = CONFIG["stages"][stage]["environment_variables"]
    return found


def no_aws_environment() -> dict[str, str]:
    """No credentials anywhere, and every AWS endpoint on a port nothing listens on."""
    return clean_environment(AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}")


def dry_run(stage: str) -> subprocess.CompletedProcess[str]:
    return run_deploy(stage, "--dry-run", environment=no_aws_environment())


def test_the_deployed_stages_are_the_five_of_the_chalice_config() -> None:
    assert DEPLOYED_STAGES == [
        "test",
        "staging",
        "prod-us-west-2",
        "prod-us-east-1",
        "prod-ca-central-1",
    ]


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
def test_dry_run_prints_the_steps_in_order_with_sagemaker_only_where_used(
    stage: str,
) -> None:
    result = dry_run(stage)

    assert result.returncode == 0, result.stderr
    steps = [match.groups() for match in map(STEP_LINE.match, result.stdout.splitlines()) if match]
    names = [name for _, _, name in steps]
    uses_sagemaker = variables(stage)["IMAGELABELLER_LABELLER"] == "sagemaker"
    expected = STEP_ORDER if uses_sagemaker else STEP_ORDER[1:]
    assert names == expected, result.stdout
    assert [(int(number), int(total)) for number, total, _ in steps] == [
        (number, len(expected)) for number in range(1, len(expected) + 1)
    ]


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
def test_every_aws_call_of_the_dry_run_is_in_the_stage_region(stage: str) -> None:
    result = dry_run(stage)

    assert result.returncode == 0, result.stderr
    calls = [match.groups() for match in map(AWS_LINE.match, result.stdout.splitlines()) if match]
    region = variables(stage)["IMAGELABELLER_AWS_REGION"]
    assert calls, result.stdout
    assert {call_region for _, _, call_region in calls} == {region}
    services = {service for service, _, _ in calls}
    assert services == {"sts", "cloudformation", "s3", "dynamodb"}
    stack_calls = [operation for service, operation, _ in calls if service == "cloudformation"]
    assert "CreateStack|UpdateStack" in stack_calls


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
def test_dry_run_names_the_stacks_templates_and_what_the_functions_step_runs(stage: str) -> None:
    output = dry_run(stage).stdout

    app_stack = f"imagelabeller-{stage}"
    assert len(app_stack) <= 46  # room for `-deliver_callbacks` in a function name
    assert f"StackName={app_stack} " in output
    assert "TemplateURL=<URL of the uploaded packaged.json>" in output
    assert "Capabilities=[CAPABILITY_IAM, CAPABILITY_AUTO_EXPAND]" in output
    assert f"chalice package --stage {stage} --merge-template .chalice/merge-template.json" in (
        output
    )
    base_url = f"IMAGELABELLER_BASE_URL=<output EndpointURL of {app_stack}>"
    assert f"run {base_url} IMAGELABELLER_SYSTEM_TEST_API_KEY=<the new key> " in output
    assert "pytest tests/system/test_api.py" in output
    endpoint = variables(stage)["IMAGELABELLER_SAGEMAKER_ENDPOINT"]
    if variables(stage)["IMAGELABELLER_LABELLER"] == "sagemaker":
        assert "TemplateBody=<cloudformation/sagemaker.yaml>" in output
        assert "InstanceType: ml.m5.large, InstanceCount: 1, " in output
        assert f"AppStackName: {app_stack}, EndpointName: {endpoint}," in output
    else:
        assert "sagemaker.yaml" not in output
        assert f"AppStackName: {app_stack}, EndpointName: ''," in output


def step_lines(output: str, name: str) -> list[str]:
    """The dry run's lines of one step: its headline, then its actions."""
    lines: list[str] = []
    for line in output.splitlines():
        if lines and not line.startswith("  "):
            break
        match = STEP_LINE.match(line)
        if lines or (match and match.group(3) == name):
            lines.append(line)
    assert lines, f"no step {name}: {output}"
    return lines


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
def test_dry_run_says_it_would_make_the_tests_a_key_then_revoke_it(stage: str) -> None:
    output = dry_run(stage).stdout
    _, made, ran, revoked = step_lines(output, "system-tests")

    table = f"region={variables(stage)['IMAGELABELLER_AWS_REGION']} TableName=ImageLabelIndex"
    assert made.startswith(f"  aws dynamodb PutItem {table} (a new API key of tenant system-tests")
    legacy = variables(stage)["IMAGELABELLER_LEGACY_ROUTES_OPEN"]
    assert "IMAGELABELLER_SYSTEM_TEST_API_KEY=<the new key> " in ran
    assert f"IMAGELABELLER_SYSTEM_TEST_LEGACY_OPEN={legacy} pytest tests/system/test_api.py" in ran
    assert revoked.startswith(f"  aws dynamodb UpdateItem {table} (revoke that key, whatever")


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
def test_dry_run_says_it_would_migrate_the_stages_tables_to_tenants(stage: str) -> None:
    headline, *calls = step_lines(dry_run(stage).stdout, "migrate")

    assert "ImageLabels and ImageLabelIndex" in headline
    region = variables(stage)["IMAGELABELLER_AWS_REGION"]
    operations = [line.split()[1:4] for line in calls]
    assert operations == [
        ["dynamodb", "Scan", f"region={region}"],
        ["dynamodb", "UpdateItem", f"region={region}"],
        ["dynamodb", "Scan", f"region={region}"],
        ["dynamodb", "TransactWriteItems", f"region={region}"],
        ["dynamodb", "DeleteItem", f"region={region}"],
    ]


def test_dry_run_packages_nothing() -> None:
    package_dir = PROJECT_DIR / "out" / "test"
    before = package_dir.stat().st_mtime_ns if package_dir.exists() else None

    assert dry_run("test").returncode == 0

    after = package_dir.stat().st_mtime_ns if package_dir.exists() else None
    assert after == before


def test_dry_run_of_some_steps_prints_only_those_in_the_usual_order() -> None:
    result = run_deploy(
        "staging", "--dry-run", "--only", "alarms,s3", environment=no_aws_environment()
    )

    assert result.returncode == 0, result.stderr
    names = [match.group(3) for match in map(STEP_LINE.match, result.stdout.splitlines()) if match]
    assert names == ["s3", "alarms"]


@pytest.mark.parametrize("stage", ["local", "local-aws"])
def test_local_stages_are_refused_with_exit_code_2(stage: str) -> None:
    for arguments in ((stage,), (stage, "--dry-run")):
        result = run_deploy(*arguments, environment=no_aws_environment())

        assert result.returncode == 2
        assert "never deployed" in result.stderr
        assert result.stdout == ""


def test_an_unknown_stage_is_refused_with_exit_code_2() -> None:
    result = run_deploy("prod-eu-west-1", environment=no_aws_environment())

    assert result.returncode == 2
    assert "unknown stage 'prod-eu-west-1'" in result.stderr
    assert "test, staging, prod-us-west-2, prod-us-east-1, prod-ca-central-1" in result.stderr


def test_a_step_the_stage_does_not_have_is_refused_with_exit_code_2() -> None:
    result = run_deploy("test", "--only", "sagemaker", environment=no_aws_environment())

    assert result.returncode == 2
    assert "no step sagemaker" in result.stderr
