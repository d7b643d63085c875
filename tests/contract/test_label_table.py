from __future__ import annotations

import base64
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.errors import DuplicateImage, DuplicateImageId, InvalidPageToken
from chalicelib.domain.models import (
    ImageInfo,
    ImageRecord,
    Label,
    LabelHit,
    Status,
    WebhookState,
    WebhookStatus,
)
from chalicelib.ports import LabelTable
from tests.support import TENANT

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
LABELS = (Label("espresso", 0.95), Label("cup", 0.015))


def new_record(
    source_url: str | None = "https://example.com/a.jpg", sha256: str | None = None
) -> ImageRecord:
    """A pending record; of its own bytes unless `sha256` says otherwise."""
    return ImageRecord(
        image_id=str(uuid.uuid4()),
        status=Status.NOT_CLASSIFIED,
        image=ImageInfo("JPEG", 640, 480, 12345, sha256 or uuid.uuid4().hex * 2),
        submitted_at=T0,
        source_url=source_url,
    )


def test_inserted_record_reads_back_equal(label_table: LabelTable) -> None:
    record = new_record()
    label_table.insert(record)
    assert label_table.get(record.image_id) == record


def test_upload_record_without_source_url_reads_back_equal(label_table: LabelTable) -> None:
    record = new_record(source_url=None)
    label_table.insert(record)
    assert label_table.get(record.image_id) == record


def test_unknown_id_reads_as_none(label_table: LabelTable) -> None:
    assert label_table.get(str(uuid.uuid4())) is None


def test_second_insert_of_an_id_is_refused_and_keeps_the_first(label_table: LabelTable) -> None:
    record = new_record()
    label_table.insert(record)
    with pytest.raises(DuplicateImageId):
        label_table.insert(new_record().__class__(**{**record.__dict__, "source_url": "x"}))
    assert label_table.get(record.image_id) == record


def test_complete_classifies_a_pending_record(label_table: LabelTable) -> None:
    record = new_record()
    label_table.insert(record)
    assert label_table.complete(
        record.image_id, LABELS, "model-a", T0 + timedelta(seconds=1), tenant=TENANT
    )
    stored = label_table.get(record.image_id)
    assert stored is not None
    assert stored.status is Status.CLASSIFIED
    assert stored.labels == LABELS
    assert stored.model == "model-a"
    assert stored.labelled_at == T0 + timedelta(seconds=1)
    assert stored.legacy_label == "espresso, cup"


def test_complete_never_overwrites_a_finished_record(label_table: LabelTable) -> None:
    record = new_record()
    label_table.insert(record)
    label_table.complete(record.image_id, LABELS, "model-a", T0, tenant=TENANT)
    assert not label_table.complete(
        record.image_id, (Label("pug", 0.5),), "model-b", T0, tenant=TENANT
    )
    assert not label_table.fail(record.image_id, "late failure", "model-b", T0)
    stored = label_table.get(record.image_id)
    assert stored is not None and stored.labels == LABELS and stored.model == "model-a"


def test_fail_marks_a_pending_record_failed_with_its_reason(label_table: LabelTable) -> None:
    record = new_record()
    label_table.insert(record)
    assert label_table.fail(record.image_id, "truncated", "model-a", T0)
    stored = label_table.get(record.image_id)
    assert stored is not None
    assert (stored.status, stored.error, stored.legacy_label) == (
        Status.FAILED,
        "truncated",
        "FAILED",
    )
    assert not label_table.complete(record.image_id, LABELS, "model-a", T0, tenant=TENANT)


def test_finishing_an_unknown_id_changes_nothing(label_table: LabelTable) -> None:
    unknown = str(uuid.uuid4())
    assert not label_table.complete(unknown, LABELS, "m", T0, tenant=TENANT)
    assert not label_table.fail(unknown, "x", "m", T0)
    assert label_table.get(unknown) is None


def test_attempts_count_up_and_keep_the_record_pending(label_table: LabelTable) -> None:
    record = new_record()
    label_table.insert(record)
    assert [label_table.count_attempt(record.image_id) for _ in range(3)] == [1, 2, 3]
    stored = label_table.get(record.image_id)
    assert stored is not None
    assert (stored.status, stored.attempts) == (Status.NOT_CLASSIFIED, 3)


def classified(label_table: LabelTable, labels: tuple[Label, ...], sha: str = "") -> ImageRecord:
    record = new_record()
    if sha:
        record = replace(record, image=replace(record.image, sha256=sha))
    label_table.insert(record)
    label_table.complete(record.image_id, labels, "model-a", T0, tenant=TENANT)
    stored = label_table.get(record.image_id)
    assert stored is not None
    return stored


def all_hits(label_table: LabelTable, name: str, limit: int) -> list[LabelHit]:
    hits, token = label_table.images_with_label(TENANT, name, limit, None)
    while token:
        page, token = label_table.images_with_label(TENANT, name, limit, token)
        assert len(page) <= limit
        hits += page
    return hits


def test_record_is_found_by_the_sha256_of_its_bytes(label_table: LabelTable) -> None:
    record = new_record()
    label_table.insert(replace(record, image=replace(record.image, sha256="cd" * 32)))
    found = label_table.find_by_sha256(TENANT, "cd" * 32)
    assert found is not None and found.image_id == record.image_id
    assert label_table.find_by_sha256(TENANT, "ef" * 32) is None


SHA = "cd" * 32


def test_a_second_record_of_the_same_bytes_is_refused_and_names_the_first(
    label_table: LabelTable,
) -> None:
    first = new_record(sha256=SHA)
    label_table.insert(first)
    second = new_record(sha256=SHA)
    with pytest.raises(DuplicateImage) as refused:
        label_table.insert(second)
    assert (refused.value.sha256, refused.value.image_id) == (SHA, first.image_id)
    assert label_table.get(second.image_id) is None
    assert label_table.get(first.image_id) == first
    found = label_table.find_by_sha256(TENANT, SHA)
    assert found is not None and found.image_id == first.image_id


def test_an_id_taken_is_reported_before_bytes_taken(label_table: LabelTable) -> None:
    record = new_record(sha256=SHA)
    label_table.insert(record)
    with pytest.raises(DuplicateImageId):
        label_table.insert(replace(record, source_url="https://example.com/b.jpg"))


def test_deleting_the_record_frees_its_bytes_for_a_new_one(label_table: LabelTable) -> None:
    first = classified(label_table, LABELS, sha=SHA)
    assert label_table.delete(first.image_id)
    again = new_record(sha256=SHA)
    label_table.insert(again)
    assert label_table.get(again.image_id) == again
    with pytest.raises(DuplicateImage) as refused:
        label_table.insert(new_record(sha256=SHA))
    assert refused.value.image_id == again.image_id


def test_records_inserted_without_unique_bytes_claim_nothing(label_table: LabelTable) -> None:
    upload = new_record(source_url=None, sha256=SHA)
    label_table.insert(upload, unique_bytes=False)
    submitted = new_record(sha256=SHA)
    label_table.insert(submitted)  # the upload did not claim the bytes
    second_upload = new_record(source_url=None, sha256=SHA)
    label_table.insert(second_upload, unique_bytes=False)  # nor does it need them
    assert label_table.delete(upload.image_id)  # and deleting it frees nothing
    with pytest.raises(DuplicateImage) as refused:
        label_table.insert(new_record(sha256=SHA))
    assert refused.value.image_id == submitted.image_id
    assert label_table.get(second_upload.image_id) == second_upload


def test_the_claim_on_bytes_is_never_a_search_hit(label_table: LabelTable) -> None:
    classified(label_table, LABELS, sha=SHA)
    for name in (f"SHA256#{SHA}", f"sha256#{SHA}", "SHA256", "IMAGE"):
        assert label_table.images_with_label(TENANT, name, 10, None) == ([], None)


def test_search_finds_classified_images_best_score_first_across_pages(
    label_table: LabelTable,
) -> None:
    scores = [0.9, 0.2, 0.75, 0.5, 0.05]
    ids = {
        score: classified(label_table, (Label("tabby", score), Label("pug", 0.01))).image_id
        for score in scores
    }
    pending = new_record()
    label_table.insert(pending)  # not labelled: not found
    hits = all_hits(label_table, "Tabby ", limit=2)  # case and spaces do not matter
    assert [(hit.image_id, hit.score) for hit in hits] == [
        (ids[score], score) for score in sorted(scores, reverse=True)
    ]
    assert [hit.score for hit in all_hits(label_table, "pug", 10)] == [0.01] * 5
    assert label_table.images_with_label(TENANT, "espresso", 10, None) == ([], None)


def test_failed_images_are_not_searchable(label_table: LabelTable) -> None:
    record = new_record()
    label_table.insert(record)
    label_table.fail(record.image_id, "broken", "m", T0)
    assert label_table.images_with_label(TENANT, "espresso", 10, None) == ([], None)


def test_a_token_from_elsewhere_is_refused(label_table: LabelTable) -> None:
    classified(label_table, (Label("tabby", 0.5),))
    classified(label_table, (Label("tabby", 0.4),))
    _, token = label_table.images_with_label(TENANT, "tabby", 1, None)
    assert token is not None
    nested = base64.urlsafe_b64encode(b"[" * 100_000 + b"]" * 100_000).decode()
    for bad in ("not-a-token", "e30=", token[:-4], nested):
        with pytest.raises(InvalidPageToken):
            label_table.images_with_label(TENANT, "tabby", 1, bad)


def test_reopen_keeps_the_previous_result_and_leaves_search(label_table: LabelTable) -> None:
    record = classified(label_table, LABELS)
    reopened = label_table.reopen(record.image_id)
    assert reopened is not None
    assert (reopened.status, reopened.labels, reopened.model) == (Status.NOT_CLASSIFIED, (), None)
    assert reopened.previous is not None
    assert (reopened.previous.labels, reopened.previous.model) == (LABELS, "model-a")
    assert reopened.previous.labelled_at == T0
    assert label_table.get(record.image_id) == reopened
    assert label_table.images_with_label(TENANT, "espresso", 10, None) == ([], None)
    assert label_table.complete(
        record.image_id, (Label("latte", 0.7),), "model-b", T0, tenant=TENANT
    )
    assert [hit.image_id for hit in all_hits(label_table, "latte", 10)] == [record.image_id]
    assert all_hits(label_table, "espresso", 10) == []


def test_reopen_refuses_a_pending_or_unknown_record(label_table: LabelTable) -> None:
    pending = new_record()
    label_table.insert(pending)
    assert label_table.reopen(pending.image_id) is None
    assert label_table.get(pending.image_id) == pending
    assert label_table.reopen(str(uuid.uuid4())) is None


def test_delete_removes_the_record_and_its_search_entries(label_table: LabelTable) -> None:
    gone = classified(label_table, LABELS)
    kept = classified(label_table, LABELS)
    assert label_table.delete(gone.image_id)
    assert label_table.get(gone.image_id) is None
    assert [hit.image_id for hit in all_hits(label_table, "espresso", 10)] == [kept.image_id]
    assert not label_table.delete(gone.image_id)


def test_delivery_is_recorded_without_touching_the_rest(label_table: LabelTable) -> None:
    record = classified(label_table, LABELS)
    delivery = WebhookState(
        url="https://hooks.example/labels",
        status=WebhookStatus.DELIVERED,
        attempts=2,
        last_attempt_at=T0,
        last_error=None,
    )
    label_table.record_delivery(record.image_id, delivery)
    assert label_table.get(record.image_id) == replace(record, webhook=delivery)
    label_table.record_delivery(str(uuid.uuid4()), delivery)  # a deleted image: no error


def of_tenant(record: ImageRecord, tenant: str) -> ImageRecord:
    return replace(record, tenant=tenant)


def test_a_record_reads_back_with_its_tenant(label_table: LabelTable) -> None:
    record = of_tenant(new_record(), "acme")
    label_table.insert(record)
    stored = label_table.get(record.image_id)
    assert stored is not None and stored.tenant == "acme"


def test_two_tenants_may_each_have_a_record_of_the_same_bytes(label_table: LabelTable) -> None:
    digest = uuid.uuid4().hex * 2
    first = of_tenant(new_record(sha256=digest), "acme")
    second = of_tenant(new_record(sha256=digest), "globex")
    label_table.insert(first)
    label_table.insert(second)  # no DuplicateImage: the claim is per tenant
    found_first = label_table.find_by_sha256("acme", digest)
    found_second = label_table.find_by_sha256("globex", digest)
    assert found_first is not None and found_first.image_id == first.image_id
    assert found_second is not None and found_second.image_id == second.image_id
    assert label_table.find_by_sha256("initech", digest) is None
    with pytest.raises(DuplicateImage) as refused:
        label_table.insert(of_tenant(new_record(sha256=digest), "globex"))
    assert refused.value.image_id == second.image_id


def test_deleting_one_tenants_record_keeps_the_others_claim(label_table: LabelTable) -> None:
    digest = uuid.uuid4().hex * 2
    first = of_tenant(new_record(sha256=digest), "acme")
    second = of_tenant(new_record(sha256=digest), "globex")
    label_table.insert(first)
    label_table.insert(second)
    assert label_table.delete(first.image_id)
    with pytest.raises(DuplicateImage):
        label_table.insert(of_tenant(new_record(sha256=digest), "globex"))
    label_table.insert(of_tenant(new_record(sha256=digest), "acme"))  # acme's claim is free


def test_search_finds_only_the_tenants_own_images(label_table: LabelTable) -> None:
    mine = of_tenant(new_record(), "acme")
    theirs = of_tenant(new_record(), "globex")
    for record in (mine, theirs):
        label_table.insert(record)
        label_table.complete(record.image_id, LABELS, "model-a", T0, tenant=record.tenant)
    hits, _ = label_table.images_with_label("acme", "espresso", 10, None)
    assert [hit.image_id for hit in hits] == [mine.image_id]
    hits, _ = label_table.images_with_label("globex", "Espresso", 10, None)
    assert [hit.image_id for hit in hits] == [theirs.image_id]
    assert label_table.images_with_label("initech", "espresso", 10, None) == ([], None)


def test_a_page_token_of_one_tenants_search_finds_nothing_of_another(
    label_table: LabelTable,
) -> None:
    records = [of_tenant(new_record(), "acme") for _ in range(3)]
    for record in records:
        label_table.insert(record)
        label_table.complete(record.image_id, LABELS, "model-a", T0, tenant="acme")
    other = of_tenant(new_record(), "globex")
    label_table.insert(other)
    label_table.complete(other.image_id, LABELS, "model-a", T0, tenant="globex")
    _, token = label_table.images_with_label("acme", "espresso", 1, None)
    assert token is not None
    try:
        hits, _ = label_table.images_with_label("globex", "espresso", 10, token)
    except InvalidPageToken:
        return
    assert all(hit.image_id == other.image_id for hit in hits)


def test_reopen_and_delete_clear_the_search_entries_of_the_records_tenant(
    label_table: LabelTable,
) -> None:
    record = of_tenant(new_record(), "acme")
    label_table.insert(record)
    label_table.complete(record.image_id, LABELS, "model-a", T0, tenant="acme")
    assert label_table.reopen(record.image_id) is not None
    assert label_table.images_with_label("acme", "espresso", 10, None) == ([], None)
    label_table.complete(record.image_id, LABELS, "model-b", T0, tenant="acme")
    assert label_table.delete(record.image_id)
    assert label_table.images_with_label("acme", "espresso", 10, None) == ([], None)
