"""What a stack keeps when it goes, and what a failed first create leaves behind.

Data resources (the image bucket, the tables, the artifacts bucket) are kept when their
stack is deleted or they are replaced: `UpdateReplacePolicy: Retain` and a `DeletionPolicy`
of `RetainExceptOnCreate`. Plain `Retain` would also keep them when the stack's first
create rolls back, and the next deploy would then fail with "already exists".
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infrastructure.templates import TEMPLATE_DIR, load_template
from tools.deploy.artifacts import artifacts_template_body

# Resource types that hold data of ours, wherever a template declares them.
DATA_TYPES = ("AWS::S3::Bucket", "AWS::DynamoDB::Table")


def every_template() -> dict[str, dict[str, Any]]:
    """Every template the deploy creates a stack from, but the app stack's (it holds no
    data: functions, roles, the API, log groups)."""
    templates = {
        path.name: load_template(path.name) for path in sorted(TEMPLATE_DIR.glob("*.yaml"))
    }
    templates["artifacts (tools/deploy/artifacts.py)"] = json.loads(artifacts_template_body())
    return templates


def data_resources() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (template, name, resource)
        for template, body in every_template().items()
        for name, resource in body["Resources"].items()
        if resource["Type"] in DATA_TYPES
    ]


def test_the_data_resources_are_the_two_buckets_and_the_two_tables() -> None:
    found = {name for _, name, _ in data_resources()}
    assert {"ImageBucket", "LabelTable", "LabelIndexTable", "ArtifactsBucket"} <= found


@pytest.mark.parametrize(
    "template, name, resource", data_resources(), ids=[name for _, name, _ in data_resources()]
)
def test_data_is_kept_except_when_the_create_that_made_it_rolls_back(
    template: str, name: str, resource: dict[str, Any]
) -> None:
    policies = (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy"))
    assert policies == ("RetainExceptOnCreate", "Retain"), f"{template}: {name} has {policies}"


def test_no_resource_is_kept_by_a_failed_first_create() -> None:
    kept = [
        f"{template}: {name}"
        for template, body in every_template().items()
        for name, resource in body["Resources"].items()
        if resource.get("DeletionPolicy") == "Retain"
    ]
    assert kept == [], (
        "DeletionPolicy Retain survives a rolled-back first create; use RetainExceptOnCreate"
    )
