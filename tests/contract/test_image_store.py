from __future__ import annotations

import uuid

import pytest

from chalicelib.errors import StoredImageMissing
from chalicelib.ports import ImageStore


def test_stored_bytes_read_back_identical(image_store: ImageStore) -> None:
    image_id = str(uuid.uuid4())
    data = bytes(range(256)) * 100
    image_store.put(image_id, data, "image/png")
    assert image_store.get(image_id) == data


def test_missing_image_raises_stored_image_missing(image_store: ImageStore) -> None:
    with pytest.raises(StoredImageMissing):
        image_store.get(str(uuid.uuid4()))


def test_deleted_image_is_gone_and_deleting_twice_is_fine(image_store: ImageStore) -> None:
    image_id = str(uuid.uuid4())
    image_store.put(image_id, b"\x89PNG data", "image/png")
    image_store.delete(image_id)
    image_store.delete(image_id)
    with pytest.raises(StoredImageMissing):
        image_store.get(image_id)


def test_images_are_kept_apart_by_id(image_store: ImageStore) -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    image_store.put(first, b"first", "image/jpeg")
    image_store.put(second, b"second", "image/jpeg")
    assert (image_store.get(first), image_store.get(second)) == (b"first", b"second")
