"""The numbers the docs give about a deployed stage are the templates' and the config's.

Counted here, not copied: the alarms of cloudformation/alarms.yaml (with and without a
SageMaker endpoint, the conditions evaluated as CloudFormation would), the metrics they
read (what an alarm costs), the functions of each deployed stage in .chalice/config.json,
and from those the idle cost that docs/DEPLOY.md works out. A new alarm or function then
fails this test until every doc says the new number.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from tests.infrastructure.templates import CHALICE_DIR, PROJECT_DIR, load_template

DOCS = {
    name: PROJECT_DIR / name
    for name in ("README.md", "docs/AWS.md", "docs/DEPLOY.md", "docs/COST.md")
}
TEMPLATES_README = PROJECT_DIR / "cloudformation" / "README.md"
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven"}
# docs/DEPLOY.md's assumed list prices ("What it costs idle").
ENDPOINT_HOURLY = 0.115
HOURS_A_MONTH = 730
ALARM_METRIC_MONTHLY = 0.10
SECRET_MONTHLY = 0.40


def evaluate(condition: Any, conditions: dict[str, Any], parameters: dict[str, str]) -> Any:
    """A condition or value of the template, for these parameter values."""
    if isinstance(condition, dict) and len(condition) == 1:
        ((name, argument),) = condition.items()
        if name == "Ref":
            return parameters[argument]
        if name == "Condition":
            return evaluate(conditions[argument], conditions, parameters)
        if name == "Fn::Equals":
            left, right = (evaluate(item, conditions, parameters) for item in argument)
            return str(left) == str(right)
        if name == "Fn::Not":
            return not evaluate(argument[0], conditions, parameters)
        if name == "Fn::And":
            return all(evaluate(item, conditions, parameters) for item in argument)
        if name == "Fn::Or":
            return any(evaluate(item, conditions, parameters) for item in argument)
    return condition


@dataclass(frozen=True)
class Alarms:
    count: int
    metrics: int  # what CloudWatch bills: a metric-math alarm pays for each metric it reads


def deployed_alarms(with_endpoint: bool) -> Alarms:
    """The alarms a deployed stage gets: parameters at their defaults, but EndpointName."""
    template = load_template("alarms.yaml")
    parameters = {
        name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()
    }
    parameters.update(AppStackName="imagelabeller-test", AlarmEmail="")
    parameters["EndpointName"] = "jumpstart-inception-v3" if with_endpoint else ""
    conditions = template.get("Conditions", {})
    count = metrics = 0
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        if "Condition" in resource and not evaluate(
            conditions[resource["Condition"]], conditions, parameters
        ):
            continue
        count += 1
        queries = resource["Properties"].get("Metrics")
        metrics += sum("MetricStat" in query for query in queries) if queries else 1
    return Alarms(count, metrics)


def deployed_stages() -> dict[str, dict[str, Any]]:
    config = json.loads((CHALICE_DIR / "config.json").read_text(encoding="utf-8"))
    return {name: stage for name, stage in config["stages"].items() if "lambda_functions" in stage}


def labeller(stage: dict[str, Any]) -> str:
    return str(stage["environment_variables"]["IMAGELABELLER_LABELLER"])


@dataclass(frozen=True)
class Facts:
    functions: int
    without_endpoint: Alarms
    with_endpoint: Alarms
    endpoint_stages: int
    other_stages: int

    @property
    def alarms_phrase(self) -> str:
        without, with_endpoint = self.without_endpoint.count, self.with_endpoint.count
        return f"{without} alarms ({with_endpoint} with a SageMaker endpoint)"

    def alarm_cost(self, alarms: Alarms) -> float:
        return round(alarms.metrics * ALARM_METRIC_MONTHLY, 2)

    @property
    def alarms_total(self) -> float:
        return round(
            self.other_stages * self.alarm_cost(self.without_endpoint)
            + self.endpoint_stages * self.alarm_cost(self.with_endpoint),
            2,
        )

    @property
    def endpoints_total(self) -> float:
        return round(self.endpoint_stages * ENDPOINT_HOURLY * HOURS_A_MONTH, 2)

    @property
    def secrets_total(self) -> float:
        return round((self.endpoint_stages + self.other_stages) * SECRET_MONTHLY, 2)

    @property
    def idle_total(self) -> int:
        """The five stages idle, a month, rounded to the dollar (what the docs say)."""
        return round(self.endpoints_total + self.alarms_total + self.secrets_total)


def facts() -> Facts:
    stages = deployed_stages()
    functions = {len(stage["lambda_functions"]) for stage in stages.values()}
    assert len(functions) == 1, f"the stages deploy different numbers of functions: {functions}"
    endpoint_stages = sum(labeller(stage) == "sagemaker" for stage in stages.values())
    return Facts(
        functions=functions.pop(),
        without_endpoint=deployed_alarms(with_endpoint=False),
        with_endpoint=deployed_alarms(with_endpoint=True),
        endpoint_stages=endpoint_stages,
        other_stages=len(stages) - endpoint_stages,
    )


def text(name: str) -> str:
    """The doc with its line breaks and runs of spaces as single spaces."""
    return " ".join(DOCS[name].read_text(encoding="utf-8").split())


def test_the_stages_deploy_four_functions_each() -> None:
    names = {name for stage in deployed_stages().values() for name in stage["lambda_functions"]}
    assert names == {"api_handler", "label_new_images", "register_uploads", "deliver_callbacks"}
    assert facts().functions == 4


@pytest.mark.parametrize("name", sorted(DOCS))
def test_each_doc_gives_the_templates_number_of_alarms(name: str) -> None:
    assert facts().alarms_phrase in text(name)


@pytest.mark.parametrize("name", [*sorted(DOCS), "cloudformation/README.md"])
def test_no_doc_gives_another_number_of_alarms(name: str) -> None:
    body = (PROJECT_DIR / name).read_text(encoding="utf-8")
    counts = {facts().without_endpoint.count, facts().with_endpoint.count}
    stated = {int(number) for number in re.findall(r"\b(\d+) alarms\b", body)}
    assert stated <= counts, f"{name} says {sorted(stated - counts)} alarms; there are {counts}"


def test_the_templates_readme_counts_the_alarms_it_lists() -> None:
    found = facts()
    sentence = (
        f"That is {found.without_endpoint.count} alarms, and {found.with_endpoint.count} "
        "with `EndpointName`"
    )
    assert sentence in " ".join(TEMPLATES_README.read_text(encoding="utf-8").split())


@pytest.mark.parametrize("name", ["README.md", "docs/AWS.md", "docs/DEPLOY.md"])
def test_the_docs_give_the_number_of_functions(name: str) -> None:
    word = NUMBER_WORDS[facts().functions]
    assert re.search(rf"\b{word} (?:Lambda )?functions\b", text(name))


def test_the_idle_cost_table_bills_every_alarm_metric_and_the_secrets() -> None:
    found = facts()
    flat = text("docs/DEPLOY.md")
    without, with_endpoint = found.without_endpoint, found.with_endpoint
    assert (
        f"{without.count} alarms, {without.metrics} metrics" in flat
        and f"{with_endpoint.count} alarms, {with_endpoint.metrics} metrics with an endpoint"
        in flat
    )
    assert (
        f"${found.alarm_cost(without):.2f} (test, prod-ca-central-1), "
        f"${found.alarm_cost(with_endpoint):.2f} (the three SageMaker stages), "
        f"**${found.alarms_total:.2f}** for all five"
    ) in flat
    assert f"**${found.secrets_total:.2f}** for five" in flat


@pytest.mark.parametrize("name", ["README.md", "docs/DEPLOY.md", "docs/COST.md"])
def test_the_docs_give_the_same_idle_cost_with_the_secrets_in_it(name: str) -> None:
    assert f"about ${facts().idle_total} a month" in text(name)


def test_the_idle_cost_says_how_much_of_it_the_endpoints_are() -> None:
    found = facts()
    share = round(100 * found.endpoints_total / found.idle_total)
    assert f"{share} % of it the three endpoints" in text("docs/DEPLOY.md")
