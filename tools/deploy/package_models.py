"""No model in the Lambda package: the model reaches Lambda in the model layer.

`chalice package` zips everything under chalicelib/. The models live in models/ at the
project's root (config.MODELS_DIR) and travel in the layer (tools/deploy/model_layer.py),
so an .onnx file in deployment.zip means one was left in chalicelib/ (a checkout from
before the move keeps chalicelib/models/, which git ignores): the package is refused,
since with it the zip would grow past Lambda's 50 MiB limit for `chalice deploy`.

The zip is also rewritten with every file readable by all, if one is not: Lambda runs the
code as a user that owns none of it.

    python -m tools.deploy.package_models out/<stage>/deployment.zip
"""

from __future__ import annotations

import copy
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

MODEL_SUFFIX = ".onnx"


class ModelInPackage(Exception):
    """The zip holds a model file, which belongs in the model layer."""


def packaged_models(archive: zipfile.ZipFile) -> list[str]:
    """The model files in the package, by their names in it."""
    return [name for name in archive.namelist() if name.endswith(MODEL_SUFFIX)]


def check_package(zip_path: Path) -> None:
    """Refuse a package with a model in it; make every file readable by all.

    Rewrites `zip_path` in place only when some file is not readable by all; the same
    zip in gives the same bytes out, so stages still share one package.
    """
    with zipfile.ZipFile(zip_path) as source:
        models = packaged_models(source)
        if models:
            raise ModelInPackage(
                f"{zip_path.name} holds {', '.join(models)}: the models belong in models/ and "
                "reach Lambda in the model layer. Move them there (`mv chalicelib/models/*.onnx "
                "models/`) and package again"
            )
        entries = source.infolist()
        if all(map(_readable_by_all, entries)):
            return
        with tempfile.NamedTemporaryFile(
            dir=zip_path.parent, suffix=".zip.tmp", delete=False
        ) as temporary:
            temporary_path = Path(temporary.name)
        try:
            with zipfile.ZipFile(temporary_path, "w") as rewritten:
                for entry in entries:
                    # A copy: writing updates offsets that reading the source relies on.
                    rewritten.writestr(_readable_copy(entry), source.read(entry))
            shutil.copymode(zip_path, temporary_path)  # not the temporary file's 0600
            os.replace(temporary_path, zip_path)
        finally:
            temporary_path.unlink(missing_ok=True)


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
    if len(argv) != 1:
        print("usage: python -m tools.deploy.package_models DEPLOYMENT_ZIP", file=sys.stderr)
        return 2
    try:
        check_package(Path(argv[0]))
    except ModelInPackage as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print("no model in the package")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
