"""`chalice deploy --stage test`, the way the original's users deploy, once the stacks exist.

It runs last (tests/rehearsal/conftest.py orders the modules): a stage is deployed either by
`scripts/deploy` (the app stack) or by `chalice deploy`, not both, so the app stack goes
first. Then, on a copy of the project (the shared .chalice/config.json stays as committed):
`scripts/configure-stage test`, `chalice deploy --stage test`, `scripts/configure-stage test
--after-deploy`, and the system tests against the API Chalice made, with a key made for
them and revoked after them.

`chalice` runs through tools/deploy/chalice_on_emulator.py, which works around two things
MiniStack's API Gateway lacks (importing a swagger document through the API, and an empty
`minimumCompressionSize` botocore can read) and changes nothing else.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.rehearsal.conftest import (
    SETTINGS,
    STAGE,
    Deployed,
    alarmed_functions_missing,
    api_keys,
    deploy_environment,
)
from tests.rehearsal.local_aws import ROOT, MiniStack
from tests.support import LoopbackServer
from tools.deploy.emulator import Emulator
from tools.deploy.settings import load_stage
from tools.deploy.system_tests import API_KEY_VARIABLE, BASE_URL_VARIABLE, LEGACY_OPEN_VARIABLE

LAMBDA_DIRECT_UPLOAD_LIMIT = 50 * 1024 * 1024
PROJECT_FILES = ("app.py", "requirements.txt", "chalicelib")
STEP_SECONDS = 600


def copy_project(destination: Path) -> Path:
    destination.mkdir()
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            skipped = shutil.ignore_patterns("__pycache__")
            shutil.copytree(source, destination / name, ignore=skipped)
        else:
            shutil.copy2(source, destination / name)
    chalice_dir = destination / ".chalice"
    chalice_dir.mkdir()
    for path in (ROOT / ".chalice").glob("*.json"):
        shutil.copy2(path, chalice_dir / path.name)
    # Chalice's cached package of the same requirements, from the deploy's `chalice
    # package`: Chalice reuses it rather than asking PyPI again.
    shutil.copytree(ROOT / ".chalice" / "deployments", chalice_dir / "deployments")
    return destination


def run(
    command: list[str], cwd: Path, environment: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=STEP_SECONDS,
    )


def delete_app_stack(emulator: MiniStack) -> None:
    cloudformation: Any = emulator.client("cloudformation")
    name = load_stage(STAGE).stack("app").name
    cloudformation.delete_stack(StackName=name)
    cloudformation.get_waiter("stack_delete_complete").wait(
        StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )


def test_chalice_deploy_works_once_the_stacks_exist(
    emulator: MiniStack, photos: LoopbackServer, first_deploy: Deployed, tmp_path: Path
) -> None:
    delete_app_stack(emulator)
    project = copy_project(tmp_path / "project")
    environment = {
        **deploy_environment(emulator, photos, tmp_path / "calls.jsonl"),
        "AWS_ENDPOINT_URL": emulator.endpoint,
        "PYTHONPATH": str(ROOT),
    }
    configure = [str(ROOT / "scripts" / "configure-stage"), STAGE, "--project-dir", str(project)]

    configured = run(configure, ROOT, environment)
    assert configured.returncode == 0, configured.stdout
    deployed = run(
        [sys.executable, "-m", "tools.deploy.chalice_on_emulator", "deploy", "--stage", STAGE],
        project,
        environment,
    )
    assert deployed.returncode == 0, deployed.stdout + emulator.log_tail()
    after = run([*configure, "--after-deploy"], ROOT, environment)
    assert after.returncode == 0, after.stdout

    record = json.loads((project / ".chalice" / "deployed" / f"{STAGE}.json").read_text())
    assert_functions_fit_a_direct_upload(emulator, record)
    # The alarms stack scripts/deploy made watches the functions chalice deploy made.
    assert alarmed_functions_missing(emulator) == []
    [api] = [item for item in record["resources"] if item["resource_type"] == "rest_api"]
    base_url = Emulator(emulator.endpoint).api_url(api["rest_api_url"])
    # What docs/DEPLOY.md says to run after chalice deploy: the tests with a key of their
    # own, revoked afterwards.
    store = api_keys(emulator)
    key = store.create("system-tests", "rehearsal: chalice deploy's system tests")
    try:
        system_tests = run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests/system/test_api.py"],
            ROOT,
            {
                **environment,
                BASE_URL_VARIABLE: base_url,
                API_KEY_VARIABLE: key.key,
                LEGACY_OPEN_VARIABLE: str(SETTINGS.legacy_routes_open).lower(),
            },
        )
    finally:
        store.revoke(key.record.key_id)
    assert system_tests.returncode == 0, system_tests.stdout[-6000:]
    assert " passed" in system_tests.stdout.splitlines()[-1]


def assert_functions_fit_a_direct_upload(emulator: MiniStack, record: dict[str, Any]) -> None:
    """What `chalice deploy` uploaded without S3: under Lambda's 50 MB, and no model in it."""
    functions: Any = emulator.client("lambda")
    names = {
        item["lambda_arn"]
        for item in record["resources"]
        if item["resource_type"] == "lambda_function"
    }
    assert len(names) == 4, record
    for name in names:
        configuration = functions.get_function(FunctionName=name)["Configuration"]
        assert 0 < configuration["CodeSize"] < LAMBDA_DIRECT_UPLOAD_LIMIT, configuration
