"""CloudFormation intrinsics resolved outside CloudFormation, for `chalice deploy`.

The policy files and the merge template hold `Fn::Sub`, `Fn::ImportValue` and `Ref`, which
CloudFormation resolves when scripts/deploy creates the app stack. `chalice deploy` sends
values to IAM and Lambda as they are, so scripts/configure-stage resolves them first,
from the deployed stacks (tools/deploy/chalice_stage.py). Anything else (Fn::GetAtt,
Fn::If, a Ref to a resource) depends on the app stack's own resources, which do not exist
under `chalice deploy`: it raises, rather than leave an intrinsic for IAM to reject.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class UnresolvedIntrinsic(ValueError):
    """A value holds an intrinsic, or a name, that cannot be resolved here."""


@dataclass(frozen=True)
class Place:
    """Where a stage is deployed: the values its templates' intrinsics stand for."""

    region: str
    account_id: str
    partition: str
    stack_name: str  # the app stack's name: `chalice deploy` names functions the same way
    exports: Mapping[str, str] = field(default_factory=dict)  # the region's exports
    parameters: Mapping[str, str] = field(default_factory=dict)  # the app stack's

    def names(self) -> dict[str, str]:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": self.partition,
            "AWS::StackName": self.stack_name,
            "AWS::URLSuffix": "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com",
            **self.parameters,
        }


def render(value: Any, place: Place) -> Any:
    """`value` with every intrinsic replaced by its concrete value."""
    if isinstance(value, dict):
        intrinsic = [key for key in value if key == "Ref" or key.startswith("Fn::")]
        if intrinsic:
            if len(value) != 1:
                raise UnresolvedIntrinsic(f"an intrinsic beside other keys: {value!r}")
            ((name, argument),) = value.items()
            return _intrinsic(name, argument, place)
        return {key: render(item, place) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, place) for item in value]
    return value


def _intrinsic(name: str, argument: Any, place: Place) -> str:
    if name == "Ref":
        return _named(argument, place.names(), "Ref")
    if name == "Fn::Sub":
        return _substitute(argument, place)
    if name == "Fn::ImportValue":
        export = render(argument, place)
        if not isinstance(export, str) or export not in place.exports:
            raise UnresolvedIntrinsic(
                f"no export {export!r} in {place.region} (deploy its stack first: "
                "scripts/deploy <stage>)"
            )
        return place.exports[export]
    raise UnresolvedIntrinsic(
        f"{name} cannot be resolved outside CloudFormation ({name}: {argument!r}); only Ref to "
        "pseudo parameters, Fn::Sub and Fn::ImportValue can"
    )


def _named(name: Any, names: Mapping[str, str], where: str) -> str:
    if not isinstance(name, str) or name not in names:
        raise UnresolvedIntrinsic(
            f"{where} to {name!r}: only {', '.join(sorted(names))} are known outside CloudFormation"
        )
    return names[name]


def _substitute(argument: Any, place: Place) -> str:
    if isinstance(argument, str):
        text, variables = argument, {}
    elif isinstance(argument, list) and len(argument) == 2 and isinstance(argument[0], str):
        text = argument[0]
        variables = {key: render(item, place) for key, item in argument[1].items()}
    else:
        raise UnresolvedIntrinsic(f"Fn::Sub takes a string or [string, variables]: {argument!r}")
    names = {**place.names(), **variables}

    def replace(match: re.Match[str]) -> str:
        inner = match.group(1)
        if inner.startswith("!"):  # ${!Literal} is the literal text ${Literal}
            return "${" + inner[1:] + "}"
        return str(_named(inner, names, "Fn::Sub variable"))

    return SUB_VARIABLE.sub(replace, text)
