"""Does the deployer policy (docs/deployer-policy.json) allow what a deploy does?

    missing_permissions(call_log_path, policy_path) -> list[str]

reads a call log that tools/deploy/calls.py wrote and lists each recorded call the policy
does not allow, one line per distinct action and resource. An empty list: all allowed.

    .venv/bin/python -m tools.deploy.policy_check <call log> [<policy>]

prints the same and exits 1 when something is missing.

The evaluation is IAM's for identity policies with Allow statements only: `Action` and
`Resource` (a string or a list) with the `*` and `?` wildcards; actions compare without
regard to case, resources with. A call whose resource is unknown (null) needs some
statement that allows its action on any resource. Conditions are not evaluated (a
statement with one counts as allowing), and `NotAction`, `NotResource` and `Deny` are
refused rather than misread. Service control policies, boundaries and resource
policies are out of scope.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tools.deploy.calls import read_call_log
from tools.deploy.settings import PROJECT_DIR

DEPLOYER_POLICY = PROJECT_DIR / "docs" / "deployer-policy.json"


class UnsupportedPolicy(ValueError):
    """The policy uses something this checker does not evaluate."""


@dataclass(frozen=True)
class Statement:
    actions: tuple[str, ...]
    resources: tuple[str, ...]

    def allows(self, action: str, resource: str | None) -> bool:
        if not any(matches(pattern, action, ignore_case=True) for pattern in self.actions):
            return False
        if resource is None:
            return True
        return any(matches(pattern, resource) for pattern in self.resources)


def as_tuple(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def statements(policy: Mapping[str, Any]) -> list[Statement]:
    """The policy's Allow statements; UnsupportedPolicy for anything we do not evaluate."""
    found = []
    raw = policy["Statement"]
    for index, statement in enumerate([raw] if isinstance(raw, Mapping) else raw):
        name = statement.get("Sid", f"statement {index}")
        unsupported = {"NotAction", "NotResource", "NotPrincipal"} & set(statement)
        if unsupported or statement.get("Effect") != "Allow":
            raise UnsupportedPolicy(
                f"{name}: only Allow statements with Action and Resource are evaluated here"
            )
        found.append(Statement(as_tuple(statement["Action"]), as_tuple(statement["Resource"])))
    return found


def load_policy(path: Path = DEPLOYER_POLICY) -> list[Statement]:
    return statements(json.loads(Path(path).read_text(encoding="utf-8")))


@cache
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = (".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def matches(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM's wildcard match: `*` any run of characters, `?` any one character."""
    return _pattern(pattern, ignore_case).fullmatch(value) is not None


def allowed(policy: Sequence[Statement], action: str, resource: str | None = None) -> bool:
    return any(statement.allows(action, resource) for statement in policy)


def not_allowed(policy: Sequence[Statement], calls: Iterable[Mapping[str, Any]]) -> list[str]:
    """`<action> on <resource>` for each distinct call the policy does not allow."""
    missing: dict[str, None] = {}
    for call in calls:
        action, resource = str(call["action"]), call.get("resource")
        if not allowed(policy, action, resource):
            where = f" on {resource}" if resource else " (resource unknown)"
            missing[f"{action}{where}, region {call.get('region') or '?'}"] = None
    return list(missing)


def missing_permissions(
    call_log_path: Path | str, policy_path: Path | str = DEPLOYER_POLICY
) -> list[str]:
    """What the recorded calls needed that the policy does not allow; [] when nothing."""
    return not_allowed(load_policy(Path(policy_path)), read_call_log(Path(call_log_path)))


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not 1 <= len(arguments) <= 2:
        print("usage: python -m tools.deploy.policy_check <call log> [<policy>]", file=sys.stderr)
        return 2
    missing = missing_permissions(*arguments)
    for line in missing:
        print(f"not allowed: {line}")
    if not missing:
        print("every recorded call is allowed")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
