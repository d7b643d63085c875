"""The JumpStart model's two region-specific values, and what can be checked offline.

- The container image is TensorFlow Serving from AWS's Deep Learning Containers registry.
  Its account and repository per region come from the SageMaker Python SDK's bundled
  `sagemaker/image_uri_config/tensorflow.json`, of which `tensorflow_inference_images.json`
  beside this file keeps the part we use (the SDK is no dependency of ours: refresh the
  file with `python -m tools.deploy.jumpstart <sagemaker wheel or tensorflow.json>`;
  tests/delivery/test_jumpstart.py compares it with the SDK wherever the SDK is
  installed). The framework version (the tag) is the one JumpStart's model specification
  names; the file says which version it was derived for.
- The model data URL is an object in JumpStart's regional bucket; only JumpStart's online
  catalogue (or the bucket itself) says which key is current. Nothing offline can check
  it, so a person does, and `model_data_confirmed` in stages.json says they did.
"""

from __future__ import annotations

import json
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tools.deploy.settings import JumpStartModel

IMAGES_FILE = Path(__file__).resolve().with_name("tensorflow_inference_images.json")
SDK_CONFIG_IN_WHEEL = "sagemaker/image_uri_config/tensorflow.json"
# What JumpStart's prepacked TensorFlow image classifiers are served with.
FRAMEWORK_VERSION = "2.8"
PROCESSOR = "cpu"  # ml.m5.large, tools/deploy/stages.json


def derive_images(
    sdk_tensorflow_config: Mapping[str, Any],
    framework_version: str = FRAMEWORK_VERSION,
    processor: str = PROCESSOR,
) -> dict[str, Any]:
    """Our excerpt of the SDK's tensorflow.json: one inference version's registries."""
    inference = sdk_tensorflow_config["inference"]
    full_version = inference.get("version_aliases", {}).get(framework_version, framework_version)
    version = inference["versions"][full_version]
    if processor not in inference["processors"]:
        raise ValueError(f"the SDK's TensorFlow inference images have no {processor} processor")
    return {
        "framework_version": framework_version,
        "processor": processor,
        "repository": version["repository"],
        "registries": dict(sorted(version["registries"].items())),
    }


def load_images(path: Path = IMAGES_FILE) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def container_image(region: str, images: Mapping[str, Any] | None = None) -> str | None:
    """The inference image the SDK's data gives for `region` (None: no registry there)."""
    data = images if images is not None else load_images()
    registry = data["registries"].get(region)
    if registry is None:
        return None
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    tag = f"{data['framework_version']}-{data['processor']}"
    return f"{registry}.dkr.ecr.{region}.{domain}/{data['repository']}:{tag}"


def model_problems(
    region: str, model: JumpStartModel, images: Mapping[str, Any] | None = None
) -> list[str]:
    """What a real deploy of the endpoint in `region` must wait for; empty when nothing."""
    where = f"tools/deploy/stages.json: sagemaker.regions.{region}"
    problems = []
    expected = container_image(region, images)
    if expected is None:
        problems.append(
            f"{where}: the SageMaker SDK's data ({relative_images_file()}) has no "
            f"TensorFlow inference image in {region}"
        )
    elif model.container_image != expected:
        problems.append(
            f"{where}.container_image is {model.container_image}, but the SageMaker SDK's "
            f"data ({relative_images_file()}) gives {expected}"
        )
    if not model.model_data_confirmed:
        problems.append(
            f"{where}.model_data_url is not confirmed (nothing offline can check it): confirm "
            f"that {model.model_data_url} is what `sagemaker.model_uris.retrieve("
            f'region="{region}", model_id="{model.model_id}", model_version="*", '
            f'model_scope="inference")` returns (docs/DEPLOY.md, "The JumpStart values"), '
            f'then set "model_data_confirmed": true'
        )
    return problems


def relative_images_file() -> str:
    return f"tools/deploy/{IMAGES_FILE.name}"


def read_sdk_config(source: Path) -> dict[str, Any]:
    """tensorflow.json from a sagemaker wheel, or the file itself."""
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            loaded: dict[str, Any] = json.loads(wheel.read(SDK_CONFIG_IN_WHEEL))
            return loaded
    loaded = json.loads(source.read_text(encoding="utf-8"))
    return loaded


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m tools.deploy.jumpstart <sagemaker-*.whl | tensorflow.json>")
        return 2
    source = Path(args[0])
    images = {"source": f"{source.name}: {SDK_CONFIG_IN_WHEEL}, inference"}
    images.update(derive_images(read_sdk_config(source)))
    IMAGES_FILE.write_text(json.dumps(images, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {relative_images_file()} from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
