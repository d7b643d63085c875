"""`imagelabeller keys create|list|revoke`: the API keys of the local data folder, or of a
deployed stage's DynamoDB table (--stage, with the stage's own settings from
.chalice/config.json and your AWS credentials).

The whole key is printed once, by `create`; only its hash is stored, so it cannot be shown
again. Every route but /health, / and /openapi.json needs a key, sent as
`Authorization: Bearer <key>`; a revoked key is refused from its next request.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from chalicelib.api_keys import ApiKeys
from chalicelib.config import ConfigError, Settings
from chalicelib.domain.api_keys import (
    ApiKeyRecord,
    InvalidKeyLabel,
    InvalidTenant,
    UnknownApiKey,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

CHALICE_CONFIG = Path(__file__).resolve().parents[1] / ".chalice" / "config.json"


def add_keys_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser(
        "keys",
        help="create, list and revoke API keys",
        description="Create, list and revoke API keys, each of one tenant: in the local "
        "data folder ($IMAGELABELLER_DATA_DIR), or in a deployed stage's table with --stage. "
        "The API's routes need a key, sent as `Authorization: Bearer <key>`.",
    )
    actions = keys.add_subparsers(title="actions", required=True, metavar="ACTION")

    create = actions.add_parser(
        "create",
        help="make a key for a tenant and print it (once)",
        description="Make a key for TENANT and print it. Only its hash is stored: the key "
        "cannot be shown again. The tenant 'legacy' is reserved (no key is issued for it).",
    )
    create.add_argument("--tenant", required=True, metavar="NAME", help="the key's tenant")
    create.add_argument("--label", metavar="TEXT", help="what the key is for")
    _add_stage_option(create)
    create.set_defaults(run=run_create, parser=create)

    listing = actions.add_parser(
        "list",
        help="list keys (ids, tenants, dates; never the keys)",
        description="List keys, revoked ones too, oldest first: never a key or its hash.",
    )
    listing.add_argument("--tenant", metavar="NAME", help="only this tenant's keys")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    _add_stage_option(listing)
    listing.set_defaults(run=run_list, parser=listing)

    revoke = actions.add_parser(
        "revoke",
        help="revoke a key by its id",
        description="Revoke the key with this id (as `keys list` shows it); revoking a "
        "revoked key changes nothing.",
    )
    revoke.add_argument("key_id", metavar="KEY_ID", help="the key's id")
    _add_stage_option(revoke)
    revoke.set_defaults(run=run_revoke, parser=revoke)


def _add_stage_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stage",
        metavar="STAGE",
        help="a stage of .chalice/config.json: its backend, region and table (default: "
        "the IMAGELABELLER_* environment, else the local data folder)",
    )


def run_create(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    keys = _api_keys(args, environ)
    if keys is None:
        return EXIT_USAGE
    try:
        issued = _calling_the_store(lambda: keys.create(args.tenant, args.label))
    except (InvalidTenant, InvalidKeyLabel) as exc:
        complain(exc.message)
        return EXIT_USAGE
    except StoreFailed as exc:
        complain(str(exc))
        return EXIT_FAILED
    record = issued.record
    print(f"key id:  {record.key_id}")
    print(f"tenant:  {record.tenant}")
    print(f"key:     {issued.key}")
    print(
        "This is the only time the key is shown: store it now. It cannot be shown again, "
        "only revoked.",
        file=sys.stderr,
    )
    return EXIT_OK


def run_list(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    keys = _api_keys(args, environ)
    if keys is None:
        return EXIT_USAGE
    try:
        records = _calling_the_store(lambda: keys.list(args.tenant))
    except StoreFailed as exc:
        complain(str(exc))
        return EXIT_FAILED
    if args.json:
        print(json.dumps([_record_json(record) for record in records], indent=2))
        return EXIT_OK
    print(key_table(records))
    return EXIT_OK


def run_revoke(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    keys = _api_keys(args, environ)
    if keys is None:
        return EXIT_USAGE
    try:
        record = _calling_the_store(lambda: keys.revoke(args.key_id))
    except UnknownApiKey as exc:
        complain(exc.message)
        return EXIT_FAILED
    except StoreFailed as exc:
        complain(str(exc))
        return EXIT_FAILED
    print(f"revoked {record.key_id} (tenant {record.tenant}) at {_when(record.revoked_at)}")
    return EXIT_OK


def key_table(records: list[ApiKeyRecord]) -> str:
    """One line per key: id, tenant, created, revoked ("-": in use), label."""
    rows = [("KEY ID", "TENANT", "CREATED", "REVOKED", "LABEL")]
    rows += [
        (
            record.key_id,
            record.tenant,
            _when(record.created_at),
            _when(record.revoked_at),
            record.label or "",
        )
        for record in records
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    return "\n".join(
        "  ".join(
            [*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[4]]
        ).rstrip()
        for row in rows
    )


def _record_json(record: ApiKeyRecord) -> dict[str, Any]:
    return {
        "key_id": record.key_id,
        "tenant": record.tenant,
        "created_at": record.created_at.isoformat(),
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
        "label": record.label,
    }


def _when(at: datetime | None) -> str:
    return at.isoformat(timespec="seconds") if at is not None else "-"


def _api_keys(args: argparse.Namespace, environ: Mapping[str, str]) -> ApiKeys | None:
    """The key use case on the store the settings name; None (said why) if they are bad."""
    from chalicelib.bootstrap import api_keys_for

    try:
        settings = Settings.from_environ(_stage_environment(args.stage, environ))
        return api_keys_for(settings)
    except (ConfigError, StageUnknown) as exc:
        complain(str(exc))
        return None


class StageUnknown(Exception):
    pass


def _stage_environment(stage: str | None, environ: Mapping[str, str]) -> Mapping[str, str]:
    """The environment with the stage's IMAGELABELLER_* variables over it: what its Lambda
    functions read their settings from."""
    if stage is None:
        return environ
    try:
        stages = json.loads(CHALICE_CONFIG.read_text(encoding="utf-8")).get("stages", {})
    except (OSError, ValueError) as exc:
        raise StageUnknown(f"cannot read {CHALICE_CONFIG}: {exc}") from None
    if stage not in stages:
        raise StageUnknown(
            f"unknown stage {stage!r}: {CHALICE_CONFIG} has {', '.join(sorted(stages))}"
        )
    variables: Mapping[str, str] = stages[stage].get("environment_variables", {})
    return {**environ, **variables}


def complain(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)


class StoreFailed(Exception):
    """The key store could not be read or written (AWS refused, or could not be reached)."""


def _calling_the_store[T](call: Callable[[], T]) -> T:
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # local mode without boto3 installed
        return call()
    try:
        return call()
    except (BotoCoreError, ClientError) as exc:
        raise StoreFailed(f"the key store failed: {exc}") from exc
