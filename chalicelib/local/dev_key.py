"""The development API key of `make run`: one per local data folder, kept in
`<data dir>/dev-api-key` (mode 0600) and printed at every start, so that a developer can
call the API (which needs a key on every route but the open ones) without making one.

A key that no longer authenticates (revoked, or its database deleted) is replaced.
"""

from __future__ import annotations

import os
import shlex
import sqlite3
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from chalicelib.api_keys import ApiKeys
from chalicelib.bootstrap import api_keys_for
from chalicelib.config import Settings
from chalicelib.domain.errors import ImageLabellerError

DEV_KEY_FILE = "dev-api-key"
DEV_TENANT = "dev"
DEV_KEY_LABEL = "make run development key"
PRIVATE_MODE = 0o600
# chalice local's own defaults.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = "8000"


@dataclass(frozen=True)
class DevKey:
    key: str
    path: Path
    created: bool

    def __repr__(self) -> str:  # never the key itself
        return f"DevKey(path={str(self.path)!r}, created={self.created})"


def dev_key_path(settings: Settings) -> Path:
    return settings.data_dir / DEV_KEY_FILE


def ensure_dev_key(settings: Settings, keys: ApiKeys) -> DevKey:
    """The key in the data folder's dev-api-key if it still authenticates; else a new key
    of tenant `dev`, written there (0600) in place of the old one."""
    path = dev_key_path(settings)
    kept = _read_key(path)
    if kept is not None and keys.authenticate(kept) is not None:
        if path.stat().st_mode & 0o777 != PRIVATE_MODE:
            path.chmod(PRIVATE_MODE)
        return DevKey(kept, path, created=False)
    issued = keys.create(DEV_TENANT, DEV_KEY_LABEL)
    write_private(path, issued.key + "\n")
    return DevKey(issued.key, path, created=True)


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by its owner only from the first byte on: a new
    file (0600) renamed over the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)  # left by a crash: O_EXCL makes it anew, 0600
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def announcement(dev_key: DevKey, base_url: str) -> str:
    """The two lines printed at start: where the key is and the key, then a curl call."""
    kept_in = shlex.quote(str(dev_key.path))
    return (
        f"ImageLabeller development API key (kept in {dev_key.path}): {dev_key.key}\n"
        f'  try: KEY=$(cat {kept_in}) && curl -H "Authorization: Bearer $KEY" '
        f'-H "Content-Type: image/jpeg" --data-binary @photo.jpg {base_url}/images\n'
    )


def served_at(argv: list[str]) -> str:
    """The base URL of `chalice local ... [--host H] [--port P]`."""
    options = {"--host": DEFAULT_HOST, "--port": DEFAULT_PORT}
    for index, arg in enumerate(argv):
        name, equals, value = arg.partition("=")
        if name in options:
            if equals:
                options[name] = value
            elif index + 1 < len(argv):
                options[name] = argv[index + 1]
    host = options["--host"]
    shown = DEFAULT_HOST if host in ("0.0.0.0", "") else host
    return f"http://{shown}:{options['--port']}"


_lock = threading.Lock()
_announced: set[Path] = set()


def announce_dev_key(
    settings: Settings,
    argv: list[str],
    stream: TextIO | None = None,
    api_keys: Callable[[Settings], ApiKeys] = api_keys_for,
) -> DevKey | None:
    """Ensure the development key and print it on stderr, once per process and data folder
    (app.py may be imported more than once). Local backend only; a failure is a warning,
    not a server that does not start."""
    out = sys.stderr if stream is None else stream
    if settings.backend != "local":
        return None
    with _lock:
        if settings.data_dir in _announced:
            return None
        _announced.add(settings.data_dir)
        try:
            dev_key = ensure_dev_key(settings, api_keys(settings))
        except (OSError, sqlite3.Error, ImageLabellerError) as error:
            print(f"warning: no development API key: {error}", file=out, flush=True)
            return None
    print(announcement(dev_key, served_at(argv)), end="", file=out, flush=True)
    return dev_key


def _read_key(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return text or None
