"""alarms.yaml, read: moto's CloudFormation has no AWS::CloudWatch::Alarm.

The expected alarms are written out here on purpose (namespace, metric, dimensions,
statistic), resolved for one made-up stage, so a renamed function, API or metric fails.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from chalicelib.adapters.emf import EmfMetrics
from chalicelib.adapters.files import FolderImageStore
from chalicelib.adapters.sqlite import SqliteLabelTable
from chalicelib.config import Limits
from chalicelib.domain.models import Label, LabelOutcome
from chalicelib.use_cases import wire
from tests.infrastructure.templates import (
    CHALICE_DIR,
    Deployment,
    load_template,
    one_resource_of_type,
    read_json,
    resources_of_type,
)
from tests.support import TENANT, NoNetwork, solid_image

APP_STACK = "imagelabeller-prod-us-west-2"
ENDPOINT = "jumpstart-inception-v3"
STAGE = Deployment(
    stack_name="imagelabeller-alarms-prod-us-west-2",
    parameters={"AppStackName": APP_STACK, "EndpointName": ENDPOINT},
)
API_FUNCTION = APP_STACK  # named as `chalice deploy` names it
STREAM_FUNCTION = f"{APP_STACK}-label_new_images"
UPLOAD_FUNCTION = f"{APP_STACK}-register_uploads"
CALLBACK_FUNCTION = f"{APP_STACK}-deliver_callbacks"
API = {"ApiName": "imagelabeller", "Stage": "api"}
VARIANT = {"EndpointName": ENDPOINT, "VariantName": "AllTraffic"}

# (namespace, metric, dimensions, statistic) of every alarm but the metric-math one.
EXPECTED_ALARMS = {
    ("AWS/Lambda", "Errors", (("FunctionName", API_FUNCTION),), "Sum"),
    ("AWS/Lambda", "Throttles", (("FunctionName", API_FUNCTION),), "Sum"),
    ("AWS/Lambda", "Duration", (("FunctionName", API_FUNCTION),), "p99"),
    ("AWS/Lambda", "Errors", (("FunctionName", STREAM_FUNCTION),), "Sum"),
    ("AWS/Lambda", "Throttles", (("FunctionName", STREAM_FUNCTION),), "Sum"),
    ("AWS/Lambda", "Duration", (("FunctionName", STREAM_FUNCTION),), "p99"),
    ("AWS/Lambda", "IteratorAge", (("FunctionName", STREAM_FUNCTION),), "Maximum"),
    ("AWS/Lambda", "Errors", (("FunctionName", UPLOAD_FUNCTION),), "Sum"),
    ("AWS/Lambda", "Throttles", (("FunctionName", UPLOAD_FUNCTION),), "Sum"),
    ("AWS/Lambda", "Duration", (("FunctionName", UPLOAD_FUNCTION),), "p99"),
    ("AWS/Lambda", "Errors", (("FunctionName", CALLBACK_FUNCTION),), "Sum"),
    ("AWS/Lambda", "Throttles", (("FunctionName", CALLBACK_FUNCTION),), "Sum"),
    ("AWS/Lambda", "Duration", (("FunctionName", CALLBACK_FUNCTION),), "p99"),
    (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        (("QueueName", "imagelabeller-uploads-failed"),),
        "Maximum",
    ),
    (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        (("QueueName", "imagelabeller-callbacks-failed"),),
        "Maximum",
    ),
    (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        (("QueueName", "imagelabeller-labelling-failed"),),
        "Maximum",
    ),
    ("AWS/DynamoDB", "ReadThrottleEvents", (("TableName", "ImageLabels"),), "Sum"),
    ("AWS/DynamoDB", "WriteThrottleEvents", (("TableName", "ImageLabels"),), "Sum"),
    ("AWS/ApiGateway", "5XXError", tuple(sorted(API.items())), "Sum"),
    ("AWS/ApiGateway", "Latency", tuple(sorted(API.items())), "p99"),
    ("AWS/SageMaker", "Invocation5XXErrors", tuple(sorted(VARIANT.items())), "Sum"),
    ("AWS/SageMaker", "Invocation4XXErrors", tuple(sorted(VARIANT.items())), "Sum"),
    ("AWS/SageMaker", "ModelLatency", tuple(sorted(VARIANT.items())), "p99"),
}
# The app's own metrics (CloudWatch embedded metric format, powertools' `service`).
APP_NAMESPACE = "ImageLabeller"
APP_DIMENSIONS = [{"Name": "service", "Value": "imagelabeller"}]
CLASSIFIED, FAILED = "ImagesClassified", "ImagesFailed"

Key = tuple[str, str, tuple[tuple[str, str], ...], str]


def alarms() -> dict[str, dict[str, Any]]:
    found = resources_of_type(load_template("alarms.yaml"), "AWS::CloudWatch::Alarm")
    assert found, "no alarm in alarms.yaml"
    return found


def metric_alarms() -> dict[Key, dict[str, Any]]:
    """The single-metric alarms by (namespace, metric, resolved dimensions, statistic)."""
    by_key: dict[Key, dict[str, Any]] = {}
    for name, alarm in alarms().items():
        properties = alarm["Properties"]
        if "Metrics" in properties:
            continue
        dimensions = tuple(
            sorted((d["Name"], STAGE.resolve(d["Value"])) for d in properties["Dimensions"])
        )
        statistic = properties.get("ExtendedStatistic") or properties["Statistic"]
        key = (properties["Namespace"], properties["MetricName"], dimensions, statistic)
        assert key not in by_key, f"{name} duplicates another alarm on {key}"
        by_key[key] = alarm
    return by_key


def failed_share_alarm() -> dict[str, Any]:
    [alarm] = [alarm for alarm in alarms().values() if "Metrics" in alarm["Properties"]]
    return alarm


def function_timeouts(function: str) -> list[int]:
    stages = read_json(CHALICE_DIR / "config.json")["stages"].values()
    timeouts = [
        stage["lambda_functions"][function]["lambda_timeout"]
        for stage in stages
        if "lambda_functions" in stage
    ]
    assert timeouts, f"no timeout for {function} in .chalice/config.json"
    return timeouts


def test_every_alarm_the_stage_needs_exists_once() -> None:
    assert set(metric_alarms()) == EXPECTED_ALARMS
    assert len(alarms()) == len(EXPECTED_ALARMS) + 1  # and the failed-share alarm


def test_every_alarm_notifies_the_topic_on_alarm_and_on_recovery() -> None:
    template = load_template("alarms.yaml")
    [topic_id] = resources_of_type(template, "AWS::SNS::Topic")
    for name, alarm in alarms().items():
        properties = alarm["Properties"]
        assert properties["AlarmActions"] == [{"Ref": topic_id}], name
        assert properties["OKActions"] == [{"Ref": topic_id}], name
        assert properties.get("ActionsEnabled", True) is True, name


def test_every_alarm_chooses_how_to_treat_missing_data() -> None:
    for name, alarm in alarms().items():
        properties = alarm["Properties"]
        percentile = "ExtendedStatistic" in properties
        # No traffic says nothing about latency (keep the state); no count means none.
        expected = "ignore" if percentile else "notBreaching"
        assert properties["TreatMissingData"] == expected, name


def test_alarms_set_no_unit_that_could_hide_the_metric() -> None:
    for name, alarm in alarms().items():
        assert "Unit" not in alarm["Properties"], name
        for metric in alarm["Properties"].get("Metrics", []):
            assert "Unit" not in metric.get("MetricStat", {}), name


def test_alarm_names_are_unique_per_app_stack() -> None:
    names = [STAGE.resolve(alarm["Properties"]["AlarmName"]) for alarm in alarms().values()]
    assert len(set(names)) == len(names)
    assert all(name.startswith(f"{APP_STACK}-") for name in names)


def test_function_names_are_the_ones_the_app_stack_gives_its_functions() -> None:
    merge = read_json(CHALICE_DIR / "merge-template.json")["Resources"]
    app = Deployment(stack_name=APP_STACK)
    named = {
        app.resolve(resource["Properties"]["FunctionName"])
        for resource in merge.values()
        if "FunctionName" in resource["Properties"]
    }
    assert named == {API_FUNCTION, STREAM_FUNCTION, UPLOAD_FUNCTION, CALLBACK_FUNCTION}


def test_api_alarms_watch_the_rest_api_and_stage_chalice_deploys() -> None:
    config = read_json(CHALICE_DIR / "config.json")
    assert config["app_name"] == API["ApiName"]
    for name, stage in config["stages"].items():
        assert stage["api_gateway_stage"] == API["Stage"], name


@pytest.mark.parametrize(
    ("function", "short_name"),
    [
        (API_FUNCTION, "api_handler"),
        (STREAM_FUNCTION, "label_new_images"),
        (UPLOAD_FUNCTION, "register_uploads"),
        (CALLBACK_FUNCTION, "deliver_callbacks"),
    ],
)
def test_duration_alarms_fire_before_the_shortest_timeout(function: str, short_name: str) -> None:
    alarm = metric_alarms()[("AWS/Lambda", "Duration", (("FunctionName", function),), "p99")]
    threshold_ms = alarm["Properties"]["Threshold"]
    assert 0 < threshold_ms < min(function_timeouts(short_name)) * 1000


def test_iterator_age_alarm_fires_long_before_stream_records_expire() -> None:
    key = ("AWS/Lambda", "IteratorAge", (("FunctionName", STREAM_FUNCTION),), "Maximum")
    threshold_ms = metric_alarms()[key]["Properties"]["Threshold"]
    assert 0 < threshold_ms <= 30 * 60 * 1000  # records expire after 24 h


def test_sagemaker_alarms_exist_only_with_an_endpoint_and_watch_its_variant() -> None:
    template = load_template("alarms.yaml")
    assert template["Conditions"]["HasEndpoint"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "EndpointName"}, ""]}]
    }
    variant = one_resource_of_type(
        load_template("sagemaker.yaml"), "AWS::SageMaker::EndpointConfig"
    )
    [production] = variant["Properties"]["ProductionVariants"]
    assert production["VariantName"] == VARIANT["VariantName"]
    for (namespace, *_), alarm in metric_alarms().items():
        sagemaker = namespace == "AWS/SageMaker"
        assert (alarm.get("Condition") == "HasEndpoint") is sagemaker, alarm
    # Left out only for an emulator that refuses metric math (MetricMathAlarms=false).
    assert failed_share_alarm()["Condition"] == "WithMetricMath"
    assert template["Parameters"]["MetricMathAlarms"]["Default"] == "true"
    assert template["Conditions"]["WithMetricMath"] == {
        "Fn::Equals": [{"Ref": "MetricMathAlarms"}, "true"]
    }


def test_model_latency_threshold_is_in_microseconds() -> None:
    alarm = metric_alarms()[
        ("AWS/SageMaker", "ModelLatency", tuple(sorted(VARIANT.items())), "p99")
    ]
    assert alarm["Properties"]["Threshold"] == 5_000_000  # 5 s


def test_email_subscription_only_when_an_address_is_given() -> None:
    template = load_template("alarms.yaml")
    [topic_id] = resources_of_type(template, "AWS::SNS::Topic")
    subscription = one_resource_of_type(template, "AWS::SNS::Subscription")
    assert subscription["Condition"] == "HasAlarmEmail"
    assert template["Conditions"]["HasAlarmEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]
    }
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": topic_id},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }
    [output] = template["Outputs"].values()
    assert output == {**output, "Value": {"Ref": topic_id}}
    assert output["Export"] == {"Name": "imagelabeller-alarms-TopicArn"}


# --- the share of images ending FAILED --------------------------------------------------


def test_failed_share_reads_the_apps_own_metrics() -> None:
    metrics = failed_share_alarm()["Properties"]["Metrics"]
    stats = {m["Id"]: m["MetricStat"] for m in metrics if "MetricStat" in m}
    assert sorted(stat["Metric"]["MetricName"] for stat in stats.values()) == [CLASSIFIED, FAILED]
    for stat in stats.values():
        assert stat["Metric"]["Namespace"] == APP_NAMESPACE
        assert stat["Metric"]["Dimensions"] == APP_DIMENSIONS
        assert (stat["Stat"], stat["Period"]) == ("Sum", 900)
    assert [m["Id"] for m in metrics if m.get("ReturnData", True)] == [
        m["Id"] for m in metrics if "Expression" in m
    ]


class FirstGoodRestUnreadable:
    """Labeller port: labels the first image of a batch and cannot read the others."""

    model_id = "test/first-good-rest-unreadable"

    def label(self, images: Iterable[bytes], top_k: int) -> list[LabelOutcome]:
        images = list(images)
        return [
            LabelOutcome(labels=(Label("espresso", 0.9),))
            if index == 0
            else LabelOutcome(error="unreadable")
            for index in range(len(images))
        ]


def test_failed_share_reads_exactly_what_the_app_emits(
    folder_store: FolderImageStore,
    sqlite_table: SqliteLabelTable,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The real service and its EMF adapter label a batch; the alarm reads those metrics."""
    service = wire(
        store=folder_store,
        table=sqlite_table,
        labeller=FirstGoodRestUnreadable(),
        fetcher=NoNetwork(),
        limits=Limits(),
        metrics=EmfMetrics(),
    )
    images = [
        service.submission.submit_upload(TENANT, solid_image(size=(32 + n, 32))).record
        for n in range(3)
    ]
    capsys.readouterr()
    service.labelling.label_images([image.image_id for image in images])
    [emitted] = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line
    ]
    [directive] = emitted["_aws"]["CloudWatchMetrics"]
    [dimension_names] = directive["Dimensions"]
    units = {metric["Name"]: metric.get("Unit") for metric in directive["Metrics"]}
    assert (emitted[CLASSIFIED], emitted[FAILED]) == ([1.0], [2.0])

    for metric in failed_share_alarm()["Properties"]["Metrics"]:
        if "MetricStat" not in metric:
            continue
        watched = metric["MetricStat"]["Metric"]
        assert watched["Namespace"] == directive["Namespace"]
        assert watched["Dimensions"] == [
            {"Name": name, "Value": emitted[name]} for name in dimension_names
        ]
        assert units[watched["MetricName"]] == "Count"


def test_failed_share_threshold_is_a_percentage_parameter_of_five_by_default() -> None:
    template = load_template("alarms.yaml")
    properties = failed_share_alarm()["Properties"]
    assert properties["Threshold"] == {"Ref": "FailedImagesPercentThreshold"}
    assert properties["ComparisonOperator"] == "GreaterThanThreshold"
    parameter = template["Parameters"]["FailedImagesPercentThreshold"]
    assert (parameter["Default"], parameter["MinValue"], parameter["MaxValue"]) == (5, 0, 100)


@pytest.mark.parametrize(
    ("classified", "failed", "percent"),
    [(95, 5, 5.0), (0, 3, 100.0), (10, None, 0.0), (None, 4, 100.0), (1, 1, 50.0)],
)
def test_failed_share_expression_is_the_percentage_of_images_that_failed(
    classified: float | None, failed: float | None, percent: float
) -> None:
    """None is a period with no datapoint for that metric (nothing emitted it)."""
    metrics = failed_share_alarm()["Properties"]["Metrics"]
    ids = {m["MetricStat"]["Metric"]["MetricName"]: m["Id"] for m in metrics if "MetricStat" in m}
    [expression] = [m["Expression"] for m in metrics if "Expression" in m]
    values = {ids[CLASSIFIED]: classified, ids[FAILED]: failed}
    assert evaluate_metric_math(expression, values) == pytest.approx(percent)


def evaluate_metric_math(expression: str, values: dict[str, float | None]) -> float | None:
    """One datapoint of a CloudWatch metric-math expression of + - * /, numbers, metric ids
    and FILL(id, number). A metric without a datapoint makes the result missing (None)."""
    binary: dict[type[ast.operator], Callable[[float, float], float]] = {
        ast.Add: operator.add,
        ast.Sub: operator.sub,
        ast.Mult: operator.mul,
        ast.Div: operator.truediv,
    }

    def value(node: ast.expr) -> float | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name):
            return values[node.id]
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "FILL"
            and len(node.args) == 2
        ):
            filled = value(node.args[0])
            return value(node.args[1]) if filled is None else filled
        if isinstance(node, ast.BinOp) and type(node.op) in binary:
            left, right = value(node.left), value(node.right)
            if left is None or right is None:
                return None
            return binary[type(node.op)](left, right)
        raise ValueError(f"not understood in {expression!r}: {ast.dump(node)}")

    assert re.fullmatch(r"[\w\s()+\-*/.,]+", expression), expression
    return value(ast.parse(expression, mode="eval").body)
