"""The alarms are deployed before the system tests run.

The original ran the system tests, then the alarms: a first deploy whose system tests
failed stayed live with no alarm. Here the alarms step comes first, and the system tests
are the last step of every stage's plan.
"""

from __future__ import annotations

import sys

import pytest

from tools.deploy.actions import RunContext, RunSystemTests
from tools.deploy.cloudformation import DeployError
from tools.deploy.plan import STEP_ORDER, build_plan
from tools.deploy.settings import deployed_stage_names, load_stage


def test_the_step_order_puts_the_alarms_before_the_system_tests() -> None:
    assert STEP_ORDER.index("functions") < STEP_ORDER.index("alarms")
    assert STEP_ORDER.index("alarms") < STEP_ORDER.index("system-tests")
    assert STEP_ORDER[-1] == "system-tests"


@pytest.mark.parametrize("stage", deployed_stage_names())
def test_every_stages_plan_deploys_the_alarms_then_runs_the_system_tests_last(stage: str) -> None:
    names = [step.name for step in build_plan(load_stage(stage))]
    assert names.index("functions") < names.index("alarms") < names.index("system-tests")
    assert names[-1] == "system-tests"
    assert names == [name for name in STEP_ORDER if name in names]


class FailingSystemTests(RunSystemTests):
    def command(self) -> list[str]:
        return [sys.executable, "-c", "raise SystemExit(3)"]


def test_failed_system_tests_say_the_live_functions_are_watched_by_the_alarms() -> None:
    with pytest.raises(DeployError) as failure:
        FailingSystemTests("https://api.example/api/").run(RunContext(lambda line: None))
    message = str(failure.value)
    assert "pytest exited 3" in message
    assert "the alarms watch them" in message
    assert "did not run" not in message
