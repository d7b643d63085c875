"""tools/deploy/chalice_on_emulator.py: what it changes for MiniStack, against a stand-in of
API Gateway's client (the real one, on MiniStack, runs in the rehearsal)."""

from __future__ import annotations

import json
from itertools import count
from typing import Any

from tools.deploy.chalice_on_emulator import build_paths, drop_empty_compression_size

LAMBDA_URI = "arn:aws:apigateway:us-west-1:lambda:path/2015-03-31/functions/f/invocations"


def proxy() -> dict[str, Any]:
    return {
        "x-amazon-apigateway-integration": {
            "type": "aws_proxy",
            "httpMethod": "POST",
            "uri": LAMBDA_URI,
        }
    }


class ApiGateway:
    """Just enough of a REST API: resources by path, and the methods put on them."""

    def __init__(self) -> None:
        self._ids = count(1)
        self.resources: dict[str, dict[str, Any]] = {"/": {"id": "root", "path": "/"}}
        self.methods: dict[tuple[str, str], dict[str, Any]] = {}

    def get_resources(self, **_: Any) -> dict[str, Any]:
        return {"items": list(self.resources.values())}

    def create_resource(self, restApiId: str, parentId: str, pathPart: str) -> dict[str, str]:
        parent = next(r for r in self.resources.values() if r["id"] == parentId)
        path = f"{parent['path'].rstrip('/')}/{pathPart}"
        self.resources[path] = {"id": f"r{next(self._ids)}", "path": path, "parentId": parentId}
        return {"id": self.resources[path]["id"]}

    def put_method(self, restApiId: str, resourceId: str, httpMethod: str, **_: Any) -> None:
        self.methods[(resourceId, httpMethod)] = {}

    def put_integration(
        self, restApiId: str, resourceId: str, httpMethod: str, **rest: Any
    ) -> None:
        assert (resourceId, httpMethod) in self.methods, "integration before its method"
        self.methods[(resourceId, httpMethod)] = rest


def test_the_swagger_documents_routes_become_resources_methods_and_proxy_integrations() -> None:
    api = ApiGateway()
    document = {
        "paths": {
            "/": {"get": proxy()},
            "/images/{image_id}": {"get": proxy(), "delete": proxy()},
            "/images": {"post": proxy()},
        }
    }

    build_paths(api, "api", document)

    assert sorted(api.resources) == ["/", "/images", "/images/{image_id}"]
    by_path = {
        (path, method): api.methods[(resource["id"], method)]
        for path, resource in api.resources.items()
        for (resource_id, method) in api.methods
        if resource_id == resource["id"]
    }
    assert sorted(by_path) == [
        ("/", "GET"),
        ("/images", "POST"),
        ("/images/{image_id}", "DELETE"),
        ("/images/{image_id}", "GET"),
    ]
    for integration in by_path.values():
        assert integration == {
            "type": "AWS_PROXY",
            "uri": LAMBDA_URI,
            "integrationHttpMethod": "POST",
        }


def test_an_empty_compression_size_is_taken_out_of_the_answer_and_nothing_else() -> None:
    answer = {"body": json.dumps({"id": "a1", "minimumCompressionSize": ""}).encode()}
    drop_empty_compression_size(answer)
    assert json.loads(answer["body"]) == {"id": "a1"}

    kept = {"body": json.dumps({"id": "a1", "minimumCompressionSize": 1024}).encode()}
    before = dict(kept)
    drop_empty_compression_size(kept)
    assert kept == before
