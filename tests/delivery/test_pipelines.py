"""Both pipeline files: valid against their published schemas (offline, with
check-jsonschema's bundled copies), and shaped as we mean: lint + tests first, then the
five deployments in order, each through scripts/deploy, production behind a person."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.delivery.support import PROJECT_DIR

BITBUCKET = PROJECT_DIR / "bitbucket-pipelines.yml"
GITHUB = PROJECT_DIR / ".github" / "workflows" / "pipeline.yml"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
CONFIG = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text(encoding="utf-8"))
DEPLOY_ORDER = ["test", "staging", "prod-us-west-2", "prod-us-east-1", "prod-ca-central-1"]
PRODUCTION = {"prod-us-west-2", "prod-us-east-1", "prod-ca-central-1"}


def load_yaml(path: Path) -> Any:
    # YAML 1.2, as both services read it: `on:` stays a string key.
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def region_of(stage: str) -> str:
    region: str = CONFIG["stages"][stage]["environment_variables"]["IMAGELABELLER_AWS_REGION"]
    return region


@pytest.mark.parametrize(
    ("path", "schema"),
    [(BITBUCKET, "vendor.bitbucket-pipelines"), (GITHUB, "vendor.github-workflows")],
)
def test_pipeline_file_is_valid_against_its_published_schema(path: Path, schema: str) -> None:
    result = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_deploy_order_covers_every_deployed_stage_of_the_chalice_config() -> None:
    deployed = [name for name in CONFIG["stages"] if name not in ("local", "local-aws")]
    assert sorted(DEPLOY_ORDER) == sorted(deployed)


@pytest.mark.parametrize("path", [BITBUCKET, GITHUB])
def test_the_system_tests_run_only_inside_scripts_deploy_which_gives_them_their_key(
    path: Path,
) -> None:
    """The system tests need an API key of the stage: scripts/deploy makes one for each
    run and revokes it after (tools/deploy/system_tests.py). A pipeline that ran them
    itself would need a stored key; neither does, nor stores one."""
    text = path.read_text(encoding="utf-8")
    commands = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "tests/system" not in commands
    assert "IMAGELABELLER_SYSTEM_TEST_API_KEY" not in text
    assert "IMAGELABELLER_BASE_URL" not in text


# --- Bitbucket ---------------------------------------------------------------------------


def bitbucket_main_steps() -> list[dict[str, Any]]:
    items = load_yaml(BITBUCKET)["pipelines"]["branches"]["main"]
    assert all(set(item) == {"step"} for item in items), "main has only plain steps"
    return [item["step"] for item in items]


def script_text(step: dict[str, Any]) -> str:
    return "\n".join(line for line in step["script"] if isinstance(line, str))


def test_bitbucket_main_tests_first_then_deploys_the_five_stages_in_order() -> None:
    first, *deploys = bitbucket_main_steps()

    assert "make test" in script_text(first)
    assert "models/**" in first["artifacts"]
    assert [step["deployment"] for step in deploys] == DEPLOY_ORDER
    for stage, step in zip(DEPLOY_ORDER, deploys, strict=True):
        script = script_text(step)
        assert script.splitlines()[-1] == f"scripts/deploy {stage}"
        assert "make test" not in script
        assert step["oidc"] is True
        assert "AWS_WEB_IDENTITY_TOKEN_FILE" in script


def test_bitbucket_production_steps_wait_for_a_manual_trigger() -> None:
    _, *deploys = bitbucket_main_steps()

    triggers = {step["deployment"]: step.get("trigger", "automatic") for step in deploys}
    assert triggers == {
        stage: "manual" if stage in PRODUCTION else "automatic" for stage in triggers
    }


def test_bitbucket_every_push_runs_lint_and_tests() -> None:
    default = load_yaml(BITBUCKET)["pipelines"]["default"]

    assert len(default) == 1
    assert "make test" in script_text(default[0]["step"])


# --- GitHub Actions ----------------------------------------------------------------------


def github_jobs() -> dict[str, Any]:
    jobs: dict[str, Any] = load_yaml(GITHUB)["jobs"]
    return jobs


def job_runs(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def job_uses(job: dict[str, Any], action: str) -> dict[str, Any]:
    found = [step for step in job["steps"] if str(step.get("uses", "")).startswith(action + "@")]
    assert len(found) == 1, f"{action} once in {job.get('name')}"
    step: dict[str, Any] = found[0]
    return step


def deploy_chain() -> list[tuple[str, dict[str, Any]]]:
    """The jobs from lint + tests onwards, each the one that `needs` the one before."""
    jobs = github_jobs()
    needs = {name: job.get("needs") for name, job in jobs.items()}
    roots = [name for name, need in needs.items() if not need]
    assert len(roots) == 1, f"one job without needs, not {roots}"
    chain = [roots[0]]
    while followers := [name for name, need in needs.items() if need in (chain[-1], [chain[-1]])]:
        assert len(followers) == 1, f"one job after {chain[-1]}, not {followers}"
        chain.append(followers[0])
    assert sorted(chain) == sorted(jobs), "every job is in the one chain"
    return [(name, jobs[name]) for name in chain]


def test_github_lint_and_tests_first_with_both_pythons() -> None:
    (_, first), *_ = deploy_chain()

    assert job_runs(first) == ["make test"]
    versions = str(job_uses(first, "actions/setup-python")["with"]["python-version"]).split()
    assert versions == ["3.11", "3.12"]
    assert job_uses(first, "actions/upload-artifact")["with"]["path"] == "models/"


def test_github_deploys_the_five_stages_in_order_each_through_scripts_deploy() -> None:
    _, *deploys = deploy_chain()

    assert [job["environment"] for _, job in deploys] == DEPLOY_ORDER
    for stage, (_, job) in zip(DEPLOY_ORDER, deploys, strict=True):
        assert job_runs(job)[-1] == f"scripts/deploy {stage}"
        assert "make test" not in job_runs(job)
        assert job_uses(job, "actions/download-artifact")["with"]["name"] == "model"


def test_github_deploys_assume_a_role_by_oidc_in_the_stage_region() -> None:
    _, *deploys = deploy_chain()

    for stage, (_, job) in zip(DEPLOY_ORDER, deploys, strict=True):
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
        credentials = job_uses(job, "aws-actions/configure-aws-credentials")["with"]
        assert credentials["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
        assert credentials["aws-region"] == region_of(stage)
        assert "aws-access-key-id" not in credentials


def test_github_two_deploys_of_one_stage_never_overlap() -> None:
    _, *deploys = deploy_chain()

    groups = [job["concurrency"]["group"] for _, job in deploys]
    assert len(set(groups)) == len(DEPLOY_ORDER)
    for stage, (_, job) in zip(DEPLOY_ORDER, deploys, strict=True):
        assert job["concurrency"]["group"].endswith(f"-{stage}")
        assert job["concurrency"]["cancel-in-progress"] is False


def test_github_deploys_only_from_main_and_never_for_pull_requests() -> None:
    workflow = load_yaml(GITHUB)
    (_, first_deploy) = deploy_chain()[1]

    assert "pull_request" in workflow["on"]
    assert "github.event_name != 'pull_request'" in first_deploy["if"]
    assert "github.ref == 'refs/heads/main'" in first_deploy["if"]
    assert workflow["permissions"] == {"contents": "read"}
