"""`imagelabeller migrate [--stage STAGE] [--dry-run]`: bring stored records up to issue
15's tenants.

On a deployed stage (--stage, or an aws backend in the IMAGELABELLER_* environment) it
migrates the stage's DynamoDB tables (adapters/dynamodb_migration.py) with your AWS
credentials; run it after the stage's functions are updated, as often as you like. The
local SQLite database migrates itself when it opens: locally this opens it, and says so.
"""

from __future__ import annotations

import argparse
import sqlite3
from collections.abc import Mapping
from typing import TYPE_CHECKING

from chalicelib.config import ConfigError, Settings
from imagelabeller_cli.keys import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    StageUnknown,
    _add_stage_option,
    _stage_environment,
    complain,
)

if TYPE_CHECKING:  # it imports botocore, which local mode may not have
    from chalicelib.adapters.dynamodb_migration import MigrationReport


def add_migrate_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    migrate = commands.add_parser(
        "migrate",
        help="bring stored records up to date (tenants)",
        description="Give every record made before tenants the tenant 'legacy', and move "
        "its search entries and byte claims to that tenant's keys: in a deployed stage's "
        "tables with --stage, else in the local data folder's database. Safe to run again: "
        "a second run finds nothing to do. Exit status: 0 done, 1 an AWS call failed "
        "(nothing is lost: run it again), 2 usage error.",
    )
    _add_stage_option(migrate)
    migrate.add_argument(
        "--dry-run", action="store_true", help="count what it would change; write nothing"
    )
    migrate.set_defaults(run=run_migrate, parser=migrate)


def run_migrate(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    try:
        settings = Settings.from_environ(_stage_environment(args.stage, environ))
    except (ConfigError, StageUnknown) as exc:
        complain(str(exc))
        return EXIT_USAGE
    if settings.backend == "local":
        return _migrate_local(settings, args.dry_run)
    return _migrate_tables(settings, args.dry_run)


def _migrate_local(settings: Settings, dry_run: bool) -> int:
    from chalicelib.adapters.sqlite import SqliteDatabase
    from chalicelib.bootstrap import DATABASE_FILE

    path = settings.data_dir / DATABASE_FILE
    if dry_run:
        print(f"{path} migrates itself when it is opened; nothing was written")
        return EXIT_OK
    try:
        SqliteDatabase(path).close()
    except (sqlite3.Error, OSError) as exc:
        complain(f"cannot open {path}: {exc}")
        return EXIT_FAILED
    print(f"{path} is up to date (it migrates itself when it is opened)")
    return EXIT_OK


def _migrate_tables(settings: Settings, dry_run: bool) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from chalicelib.adapters.dynamodb_migration import migrate_to_tenants

    aws = settings.aws
    client = boto3.client("dynamodb", region_name=aws.region)
    try:
        report = migrate_to_tenants(client, aws.table, aws.label_index_table, dry_run=dry_run)
    except (BotoCoreError, ClientError) as exc:
        complain(f"the migration stopped: {exc}. Nothing is lost: run it again to finish.")
        return EXIT_FAILED
    print(f"{aws.table} and {aws.label_index_table} in {aws.region}:")
    print(report_text(report))
    return EXIT_OK


def report_text(report: MigrationReport) -> str:
    """One line per count, then what it comes to."""
    counts = [
        (report.records_tagged, "records given the tenant legacy"),
        (report.records_left, "records with a tenant already"),
        (report.records_skipped, "records changed meanwhile (tagged or deleted by others)"),
        (report.entries_moved, "search entries moved under legacy#"),
        (report.claims_moved, "byte claims moved under SHA256#legacy#"),
        (report.old_items_dropped, "old items deleted: their new one was there already"),
        (report.old_items_gone, "old items deleted by others meanwhile"),
        (report.orphans_left, "old items left as they are: their image is gone or not legacy's"),
    ]
    width = max(len(str(count)) for count, _ in counts)
    lines = [f"  {count:>{width}}  {what}" for count, what in counts]
    if report.dry_run:
        lines.append(f"dry run: a run would make {report.changes} changes; nothing was written")
    elif report.changes:
        lines.append(f"done: {report.changes} changes; a second run finds nothing to do")
    else:
        lines.append("up to date: nothing to change")
    return "\n".join(lines)
