"""Running the `imagelabeller` command as a user would, and folders of real photos for it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support import photo_jpeg, photo_png

ROOT = Path(__file__).resolve().parents[2]
CLI_TIMEOUT_SECONDS = 120


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m imagelabeller_cli ARGS...` in a fresh process, from the project folder."""
    return run_command([sys.executable, "-m", "imagelabeller_cli", *args], ROOT, env)


def run_command(
    command: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `command`; IMAGELABELLER_* variables of the calling shell are dropped, so that
    only `env` counts."""
    clean = {name: value for name, value in os.environ.items() if not _ours(name)}
    return subprocess.run(
        command,
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )


def _ours(name: str) -> bool:
    return name.startswith("IMAGELABELLER_")


@dataclass(frozen=True)
class PhotoFolder:
    """root/coffee.png, root/notes.txt, root/trips/chelsea.jpg, root/trips/broken.jpg,
    root/trips/2024/motorcycle.png: three photos, a text file, a truncated JPEG."""

    root: Path

    @property
    def coffee(self) -> Path:
        return self.root / "coffee.png"

    @property
    def notes(self) -> Path:
        return self.root / "notes.txt"

    @property
    def chelsea(self) -> Path:
        return self.root / "trips" / "chelsea.jpg"

    @property
    def broken(self) -> Path:
        return self.root / "trips" / "broken.jpg"

    @property
    def motorcycle(self) -> Path:
        return self.root / "trips" / "2024" / "motorcycle.png"

    @property
    def all_files(self) -> list[Path]:
        return [self.coffee, self.notes, self.chelsea, self.broken, self.motorcycle]


def write_photo_folder(root: Path) -> PhotoFolder:
    folder = PhotoFolder(root)
    folder.motorcycle.parent.mkdir(parents=True)
    folder.coffee.write_bytes(photo_png("coffee"))
    folder.notes.write_text("shopping: beans, milk\n")
    folder.chelsea.write_bytes(photo_jpeg("chelsea"))
    folder.broken.write_bytes(truncated_jpeg())
    folder.motorcycle.write_bytes(photo_png("motorcycle"))
    return folder


def truncated_jpeg() -> bytes:
    """A real photo's JPEG cut in half: it starts like an image but is damaged."""
    whole = photo_jpeg("motorcycle")
    return whole[: len(whole) // 2]
