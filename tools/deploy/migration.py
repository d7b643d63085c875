"""The migrate step: a stage's tables moved to issue 15's tenants, right after the functions
step updated the functions that read only the new formats.

It runs `chalicelib.adapters.dynamodb_migration.migrate_to_tenants` (what `imagelabeller
migrate --stage` runs) with the deploy's credentials: records without a tenant become the
`legacy` tenant's, and the old search entries and byte claims move under its keys. Every
write is conditional, so a stage with nothing old (a new one, or any deploy after the
first with tenants) only reads its two tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.deploy.actions import RunContext, aws_call


@dataclass(frozen=True)
class MigrateToTenants:
    region: str
    table: str  # the records (ImageLabels)
    index_table: str  # search entries and byte claims (ImageLabelIndex)

    def describe(self) -> list[str]:
        region, table, index = self.region, self.table, self.index_table
        return [
            aws_call("dynamodb", "Scan", region, TableName=table) + " (consistent)",
            aws_call("dynamodb", "UpdateItem", region, TableName=table)
            + " (each record without a Tenant: Tenant legacy, if it still has none)",
            aws_call("dynamodb", "Scan", region, TableName=index)
            + " (consistent; the items without a tenant in their key)",
            aws_call(
                "dynamodb",
                "TransactWriteItems",
                region,
                Put=index,
                Delete=index,
                ConditionCheck=table,
            )
            + " (each old search entry and byte claim: moved under legacy, if its record is"
            " legacy's)",
            aws_call("dynamodb", "DeleteItem", region, TableName=index)
            + " (an old item whose moved twin exists already)",
        ]

    def run(self, context: RunContext) -> None:
        from chalicelib.adapters.dynamodb_migration import migrate_to_tenants

        client = context.client("dynamodb", self.region)
        report = migrate_to_tenants(client, self.table, self.index_table)
        context.say(
            f"{self.table}: {report.records_tagged} records given the tenant legacy "
            f"({report.records_left} had a tenant); {self.index_table}: "
            f"{report.entries_moved} search entries and {report.claims_moved} byte claims "
            f"moved under legacy, {report.old_items_dropped} old items dropped (moved already), "
            f"{report.orphans_left} left (their image is gone or not legacy's)"
        )
        context.say(
            f"migrated: {report.changes} changes" if report.changes else "migrated: up to date"
        )
