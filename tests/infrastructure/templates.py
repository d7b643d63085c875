"""Read the CloudFormation templates in cloudformation/ the way cfn-lint reads them.

The templates use the short intrinsic tags (`!Sub`, `!Ref`, `!GetAtt`), which plain
`yaml.safe_load` refuses; cfn-lint's own decoder turns them into `{"Fn::Sub": ...}`.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from cfnlint.decode import decode  # type: ignore[import-untyped]

PROJECT_DIR = Path(__file__).resolve().parents[2]
TEMPLATE_DIR = PROJECT_DIR / "cloudformation"
CHALICE_DIR = PROJECT_DIR / ".chalice"
CFN_LINT = Path(sys.executable).parent / "cfn-lint"

TEMPLATES = ("s3.yaml", "dynamodb.yaml", "secrets.yaml", "sagemaker.yaml", "alarms.yaml")


@cache
def _load(name: str) -> str:
    template, problems = decode(str(TEMPLATE_DIR / name))
    assert not problems, f"{name} does not parse: {problems}"
    # Plain dicts and lists (cfn-lint's nodes carry line marks), as a JSON string so
    # that every caller gets its own copy.
    return json.dumps(template)


def load_template(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(_load(name))
    return loaded


def resources_of_type(template: Mapping[str, Any], resource_type: str) -> dict[str, Any]:
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def one_resource_of_type(template: Mapping[str, Any], resource_type: str) -> dict[str, Any]:
    found = resources_of_type(template, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    (resource,) = found.values()
    return dict(resource)


def exports(template: Mapping[str, Any]) -> dict[str, Any]:
    """Export name -> the output's Value, for every exported output."""
    return {
        output["Export"]["Name"]: output["Value"]
        for output in template.get("Outputs", {}).values()
        if "Export" in output
    }


def walk(value: Any) -> Iterator[Any]:
    """Every dict, list and scalar inside value, value first."""
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def imported_names(document: Any) -> set[str]:
    """Every literal Fn::ImportValue name in a template or policy document."""
    names: set[str] = set()
    for node in walk(document):
        if isinstance(node, dict) and "Fn::ImportValue" in node:
            name = node["Fn::ImportValue"]
            assert isinstance(name, str), f"an import with a computed name: {node}"
            names.add(name)
    return names


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Deployment:
    """A made-up place to deploy a template, to resolve Ref, Fn::Sub and Fn::ImportValue
    (from `exports`) in tests.

    Anything else (Fn::GetAtt, Fn::Select, a Ref to a resource) raises, so a value that
    depends on something unexpected fails the test that reads it.
    """

    region: str = "us-west-2"
    account_id: str = "111122223333"
    stack_name: str = "imagelabeller-test"
    parameters: Mapping[str, str] = field(default_factory=dict)
    exports: Mapping[str, str] = field(default_factory=dict)

    @property
    def names(self) -> dict[str, str]:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::StackName": self.stack_name,
            "AWS::URLSuffix": "amazonaws.com",
            **self.parameters,
        }

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((name, argument),) = value.items()
            if name == "Ref":
                return self.names[argument]
            if name == "Fn::Sub":
                return self._substitute(argument)
            if name == "Fn::ImportValue":
                return self.exports[self.resolve(argument)]
            if name.startswith("Fn::"):
                raise ValueError(f"cannot resolve {value!r} in a test")
        if isinstance(value, dict):
            return {key: self.resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        return value

    def _substitute(self, argument: Any) -> str:
        if isinstance(argument, str):
            text, variables = argument, {}
        else:
            text, extra = argument
            variables = {key: self.resolve(item) for key, item in extra.items()}
        names = {**self.names, **variables}
        return re.sub(r"\$\{([^}!]+)\}", lambda match: str(names[match.group(1)]), text)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
