from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.adapters.files import FolderImageStore
from chalicelib.domain.errors import StoredImageMissing
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


def test_size_tells_the_stored_byte_count_and_missing_images_raise(
    image_store: ImageStore,
) -> None:
    image_id = str(uuid.uuid4())
    image_store.put(f"uploads/{image_id}", b"x" * 12_345, "image/jpeg")
    assert image_store.size(f"uploads/{image_id}") == 12_345
    with pytest.raises(StoredImageMissing):
        image_store.size(image_id)
    image_store.delete(f"uploads/{image_id}")
    with pytest.raises(StoredImageMissing):
        image_store.size(f"uploads/{image_id}")


def test_images_are_kept_apart_by_id(image_store: ImageStore) -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    image_store.put(first, b"first", "image/jpeg")
    image_store.put(second, b"second", "image/jpeg")
    assert (image_store.get(first), image_store.get(second)) == (b"first", b"second")


def test_put_new_stores_only_where_nothing_is_stored(image_store: ImageStore) -> None:
    image_id = str(uuid.uuid4())
    assert image_store.put_new(image_id, b"first", "image/jpeg") is True
    assert image_store.put_new(image_id, b"second", "image/jpeg") is False
    assert image_store.get(image_id) == b"first"
    image_store.delete(image_id)
    assert image_store.put_new(image_id, b"third", "image/jpeg") is True
    assert image_store.get(image_id) == b"third"


def test_put_new_at_the_same_moment_stores_once(folder_store: FolderImageStore) -> None:
    """On the folder only: S3 decides between conditional PUTs at once itself (one gets 412
    or 409), but moto's in-process S3 does not make the check atomic across threads."""
    image_store = folder_store
    image_id = str(uuid.uuid4())
    bodies = [f"body {n}".encode() for n in range(8)]
    start = threading.Barrier(len(bodies))

    def put(data: bytes) -> bool:
        start.wait()
        return image_store.put_new(image_id, data, "image/jpeg")

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        stored = list(pool.map(put, bodies))
    assert stored.count(True) == 1
    assert image_store.get(image_id) == bodies[stored.index(True)]
