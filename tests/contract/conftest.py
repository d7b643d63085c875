"""Every adapter of a port runs the same contract suite: add new backends to the params."""

from __future__ import annotations

import pytest

from chalicelib.ports import ImageStore, LabelTable


@pytest.fixture(params=["sqlite", "dynamodb"])
def label_table(request: pytest.FixtureRequest) -> LabelTable:
    table: LabelTable = request.getfixturevalue(f"{request.param}_table")
    return table


@pytest.fixture(params=["folder", "s3"])
def image_store(request: pytest.FixtureRequest) -> ImageStore:
    store: ImageStore = request.getfixturevalue(f"{request.param}_store")
    return store
