"""A deploy to a local AWS emulator (MiniStack) instead of AWS: the rehearsal of a real one.

`IMAGELABELLER_DEPLOY_EMULATOR=<endpoint URL>` turns it on. It changes only what an
emulator on an offline machine needs; everything else runs the real code path:

- endpoints: every boto3 client talks to the emulator, and the system tests reach the API
  through the emulator's path form (`<endpoint>/_aws/execute-api/<api id>/<stage>/`),
  since `*.execute-api.*` host names resolve to AWS;
- the photo source: the system tests fetch photos from a loopback server
  (`IMAGELABELLER_PHOTO_BASE_URL`), and an offline machine has no public address, so the
  packaged functions may fetch private addresses (`IMAGELABELLER_ALLOW_PRIVATE_URLS`);
- what the emulator cannot do: it refuses metric-math alarms, so the alarms stack is
  deployed without them (`MetricMathAlarms=false`); it sends no mail, so a stage whose
  alarm email is not decided yet gets no subscription rather than a refusal.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tools.deploy.settings import StageSettings

EMULATOR_VARIABLE = "IMAGELABELLER_DEPLOY_EMULATOR"
EXECUTE_API_URL = re.compile(
    r"^https://(?P<api>[a-z0-9]+)\.execute-api\.[a-z0-9-]+\.amazonaws\.com/(?P<rest>.*)$"
)
# The only run-time setting the emulator changes, and its value there.
FUNCTION_OVERRIDES = {"IMAGELABELLER_ALLOW_PRIVATE_URLS": "true"}
ALARM_OVERRIDES = {"MetricMathAlarms": "false"}


@dataclass(frozen=True)
class Emulator:
    endpoint: str

    def api_url(self, deployed_url: str) -> str:
        """The emulator's URL for an API Gateway stage URL (unchanged if not one)."""
        match = EXECUTE_API_URL.match(deployed_url)
        if match is None:
            return deployed_url
        return f"{self.endpoint}/_aws/execute-api/{match['api']}/{match['rest']}"

    def changes(self) -> list[str]:
        overrides = ", ".join(f"{name}={value}" for name, value in FUNCTION_OVERRIDES.items())
        alarms = ", ".join(f"{name}={value}" for name, value in ALARM_OVERRIDES.items())
        return [
            f"every AWS call goes to {self.endpoint}",
            f"the functions run with {overrides} (the photos are on loopback)",
            f"the alarms stack gets {alarms} (the emulator refuses metric-math alarms)",
            "the system tests use the emulator's /_aws/execute-api/ paths",
            "an alarm email not decided yet means no subscription (the emulator sends no mail)",
        ]

    def stage_settings(self, stage: StageSettings) -> StageSettings:
        if stage.alarm_email is None:
            return replace(stage, alarm_email="")
        return stage


def emulator_from(environment: Mapping[str, str] = os.environ) -> Emulator | None:
    endpoint = environment.get(EMULATOR_VARIABLE, "").strip().rstrip("/")
    return Emulator(endpoint) if endpoint else None


def override_function_settings(sam_path: Path) -> None:
    """Set FUNCTION_OVERRIDES in every function's environment of `chalice package`'s output."""
    template: dict[str, Any] = json.loads(sam_path.read_text(encoding="utf-8"))
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        environment = resource.setdefault("Properties", {}).setdefault("Environment", {})
        environment.setdefault("Variables", {}).update(FUNCTION_OVERRIDES)
    sam_path.write_text(json.dumps(template, indent=2) + "\n", encoding="utf-8")
