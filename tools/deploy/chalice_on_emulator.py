"""`chalice` against MiniStack, for the rehearsal of `chalice deploy` (tests/rehearsal):

    AWS_ENDPOINT_URL=http://127.0.0.1:<port> PYTHONPATH=<project> \\
        .venv/bin/python -m tools.deploy.chalice_on_emulator deploy --stage test

Chalice's own CLI, with two changes MiniStack (1.5) needs. Never for AWS:

- Chalice turns API compression off with UpdateRestApi `replace /minimumCompressionSize
  ""`; AWS then answers without the setting, MiniStack with `"minimumCompressionSize": ""`,
  which botocore cannot read as an integer (`ValueError: invalid literal for int()`). The
  empty value is taken out of API Gateway's answers before botocore parses them.
- Chalice creates and updates the REST API from its swagger document (ImportRestApi,
  PutRestApi). MiniStack reads a swagger document only in a CloudFormation template: it
  takes ImportRestApi for a CreateRestApi (an empty API called "unnamed") and has no
  PutRestApi. Here both build the document's resources, methods and integrations with the
  calls MiniStack has (CreateResource, PutMethod, PutIntegration).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from chalice.awsclient import TypedAWSClient
from chalice.cli import factory, main

_create_botocore_session = factory.create_botocore_session
INTEGRATION = "x-amazon-apigateway-integration"


def drop_empty_compression_size(response_dict: dict[str, Any], **_: Any) -> None:
    body = response_dict.get("body")
    if not body:
        return
    try:
        parsed = json.loads(body)
    except ValueError:
        return
    if isinstance(parsed, dict) and parsed.get("minimumCompressionSize") == "":
        del parsed["minimumCompressionSize"]
        response_dict["body"] = json.dumps(parsed).encode("utf-8")


def create_botocore_session(*args: Any, **kwargs: Any) -> Any:
    session = _create_botocore_session(*args, **kwargs)
    session.register("before-parse.api-gateway", drop_empty_compression_size)
    return session


def import_rest_api(
    self: TypedAWSClient, swagger_document: dict[str, Any], endpoint_type: str
) -> str:
    client = self._client("apigateway")
    created = client.create_rest_api(
        name=swagger_document.get("info", {}).get("title", "chalice"),
        binaryMediaTypes=swagger_document.get("x-amazon-apigateway-binary-media-types", []),
        endpointConfiguration={"types": [endpoint_type]},
    )
    build_paths(client, created["id"], swagger_document)
    return str(created["id"])


def update_api_from_swagger(
    self: TypedAWSClient, rest_api_id: str, swagger_document: dict[str, Any]
) -> None:
    client = self._client("apigateway")
    found = client.get_resources(restApiId=rest_api_id, limit=500, embed=["methods"])
    resources = found["items"]
    root = next(resource for resource in resources if resource["path"] == "/")
    for method in root.get("resourceMethods", {}):
        client.delete_method(restApiId=rest_api_id, resourceId=root["id"], httpMethod=method)
    for resource in resources:  # the root's children, and with them every other one
        if resource.get("parentId") == root["id"]:
            client.delete_resource(restApiId=rest_api_id, resourceId=resource["id"])
    build_paths(client, rest_api_id, swagger_document)


def build_paths(client: Any, rest_api_id: str, swagger_document: dict[str, Any]) -> None:
    resources = client.get_resources(restApiId=rest_api_id, limit=500)["items"]
    ids = {resource["path"]: resource["id"] for resource in resources}
    for path, operations in sorted(swagger_document.get("paths", {}).items()):
        parent = "/"
        for part in [segment for segment in path.split("/") if segment]:
            here = f"{parent.rstrip('/')}/{part}"
            if here not in ids:
                ids[here] = client.create_resource(
                    restApiId=rest_api_id, parentId=ids[parent], pathPart=part
                )["id"]
            parent = here
        for method, operation in operations.items():
            if not isinstance(operation, dict) or INTEGRATION not in operation:
                continue
            integration = operation[INTEGRATION]
            client.put_method(
                restApiId=rest_api_id,
                resourceId=ids[path],
                httpMethod=method.upper(),
                authorizationType="NONE",
            )
            arguments = {
                "restApiId": rest_api_id,
                "resourceId": ids[path],
                "httpMethod": method.upper(),
                "type": integration["type"].upper(),
            }
            if "uri" in integration:
                arguments["uri"] = integration["uri"]
            if "httpMethod" in integration:
                arguments["integrationHttpMethod"] = integration["httpMethod"]
            client.put_integration(**arguments)


if __name__ == "__main__":
    factory.create_botocore_session = create_botocore_session
    TypedAWSClient.import_rest_api = import_rest_api  # type: ignore[method-assign]
    TypedAWSClient.update_api_from_swagger = update_api_from_swagger  # type: ignore[method-assign]
    sys.argv[0] = "chalice"
    sys.exit(main())
