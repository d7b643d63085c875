"""The alarms are deployed before the system tests run, and the tables are migrated to
tenants as soon as the functions that read only the new formats are live.

The original ran the system tests, then the alarms: a first deploy whose system tests
failed stayed live with no alarm. Here the alarms step comes first, and the system tests
are the last step of every stage's plan. The migrate step (issue 15) follows the functions
step at once: until it has run, what the tables hold from before tenants is under keys
the new functions no longer read.
"""

from __future__ import annotations

import pytest

from tools.deploy.plan import STEP_ORDER, build_plan
from tools.deploy.settings import deployed_stage_names, load_stage


def test_the_step_order_puts_the_alarms_before_the_system_tests() -> None:
    assert STEP_ORDER.index("functions") < STEP_ORDER.index("alarms")
    assert STEP_ORDER.index("alarms") < STEP_ORDER.index("system-tests")
    assert STEP_ORDER[-1] == "system-tests"


def test_the_migrate_step_follows_the_functions_step_at_once() -> None:
    assert STEP_ORDER.index("migrate") == STEP_ORDER.index("functions") + 1


@pytest.mark.parametrize("stage", deployed_stage_names())
def test_every_stages_plan_deploys_the_alarms_then_runs_the_system_tests_last(stage: str) -> None:
    names = [step.name for step in build_plan(load_stage(stage))]
    assert names.index("functions") < names.index("alarms") < names.index("system-tests")
    assert names.index("migrate") == names.index("functions") + 1
    assert names[-1] == "system-tests"
    assert names == [name for name in STEP_ORDER if name in names]
