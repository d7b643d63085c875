"""One model in the Lambda package: the one the stage labels with.

`chalice package` zips everything under chalicelib/, so every model `make setup` built
would ship (Lite0 is 18.6 MB, Lite2 24.4 MB). After packaging, the other models'
files are taken out of deployment.zip; every other entry is copied as it was.

    python -m tools.deploy.package_models out/<stage>/deployment.zip efficientnet-lite0
"""

from __future__ import annotations

import copy
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

MODELS_IN_ZIP = "chalicelib/models/"
MODEL_SUFFIX = ".onnx"


class ModelNotPackaged(Exception):
    """The zip lacks the model the stage labels with (it was not built: `make setup`)."""


def model_entry(model: str) -> str:
    """The model's file name inside the package."""
    return f"{MODELS_IN_ZIP}{model}{MODEL_SUFFIX}"


def packaged_models(archive: zipfile.ZipFile) -> list[str]:
    """The model files in the package, by their names in it."""
    return [
        name
        for name in archive.namelist()
        if name.startswith(MODELS_IN_ZIP) and name.endswith(MODEL_SUFFIX)
    ]


def keep_only_model(zip_path: Path, model: str, out_path: Path | None = None) -> list[str]:
    """Rewrite the package without the models other than `model`; the names taken out.

    Every file is made readable by all on the way (Lambda runs the code as a user that owns
    none of it, and a model exported through a 0600 temporary file would not load).
    Writes `out_path`, or replaces `zip_path` when there is none. The same zip in gives
    the same bytes out, so stages that choose the same model still share one package.
    """
    keep = model_entry(model)
    with zipfile.ZipFile(zip_path) as source:
        models = packaged_models(source)
        if keep not in models:
            raise ModelNotPackaged(
                f"{zip_path.name} holds no {keep} (it holds {', '.join(models) or 'no model'}): "
                "build the models with `make setup`"
            )
        dropped = [name for name in models if name != keep]
        target = out_path or zip_path
        entries = source.infolist()
        if not dropped and target == zip_path and all(map(_readable_by_all, entries)):
            return []
        with tempfile.NamedTemporaryFile(
            dir=target.parent, suffix=".zip.tmp", delete=False
        ) as temporary:
            temporary_path = Path(temporary.name)
        try:
            with zipfile.ZipFile(temporary_path, "w") as rewritten:
                for entry in entries:
                    if entry.filename not in dropped:
                        # A copy: writing updates offsets that reading the source relies on.
                        rewritten.writestr(_readable_copy(entry), source.read(entry))
            shutil.copymode(zip_path, temporary_path)  # not the temporary file's 0600
            os.replace(temporary_path, target)
        finally:
            temporary_path.unlink(missing_ok=True)
    return dropped


def unix_mode(entry: zipfile.ZipInfo) -> int:
    return entry.external_attr >> 16


def _readable_by_all(entry: zipfile.ZipInfo) -> bool:
    mode = unix_mode(entry)
    return mode == 0 or mode & 0o444 == 0o444  # 0: no Unix mode recorded (read as 644)


def _readable_copy(entry: zipfile.ZipInfo) -> zipfile.ZipInfo:
    copied = copy.copy(entry)
    mode = unix_mode(entry)
    if mode:
        mode |= 0o444 | (0o111 if mode & 0o100 else 0)  # executables stay executable
        copied.external_attr = (mode << 16) | (entry.external_attr & 0xFFFF)
    return copied


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m tools.deploy.package_models DEPLOYMENT_ZIP MODEL", file=sys.stderr)
        return 2
    try:
        dropped = keep_only_model(Path(argv[0]), argv[1])
    except ModelNotPackaged as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"left out: {', '.join(dropped) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
