"""The `imagelabeller` command: argument parsing, the commands, exit statuses.

Exit statuses: 0 done; 1 some file or request failed (an API error, an image that could
not be labelled); 2 a usage error (a missing path, bad settings, no model file).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from chalicelib.config import ConfigError, Settings
from chalicelib.domain.api_keys import parse_key
from chalicelib.domain.errors import LabellerUnavailable
from chalicelib.ports import Labeller
from imagelabeller_cli import keys, migrate, output
from imagelabeller_cli.api_client import (
    ApiClient,
    ApiError,
    ApiUnreachable,
    WaitTimedOut,
    wait_until_finished,
)
from imagelabeller_cli.local_files import (
    Candidate,
    candidates,
    missing_paths,
    upload_media_type,
)
from imagelabeller_cli.local_labelling import FileResult, ModelMissing, label_files, onnx_labeller

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

API_VARIABLE = "IMAGELABELLER_API"
API_KEY_VARIABLE = "IMAGELABELLER_API_KEY"
DEFAULT_API = "http://127.0.0.1:8000"
DEFAULT_TOP_K = 5
DEFAULT_BATCH_SIZE = 16
DEFAULT_WAIT_SECONDS = 60.0
URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    parser = build_parser(environ)
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args, environ)
        return status
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `imagelabeller label photos | head`
        _silence_stdout()
        return EXIT_FAILED


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imagelabeller",
        description="Label images with ImageLabeller's model: local files in process "
        "(label), or through a running API (submit, get); manage API keys (keys); move "
        "data made before tenants to the legacy tenant (migrate).",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    _add_label_command(commands)
    api_default = environ.get(API_VARIABLE) or DEFAULT_API
    _add_submit_command(commands, api_default)
    _add_get_command(commands, api_default)
    keys.add_keys_command(commands)
    migrate.add_migrate_command(commands)
    return parser


def _add_label_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    label = commands.add_parser(
        "label",
        help="label local image files in process (no server)",
        description="Label image files, and every image in the folders given (recursively), "
        "with the ONNX model in this process. Files in folders that are not images are "
        "skipped. Exit status: 0 all labelled, 1 some file failed, 2 usage error.",
    )
    label.add_argument("paths", nargs="+", metavar="PATH", type=Path, help="a file or a folder")
    label.add_argument("--json", action="store_true", help="print a JSON array on stdout")
    label.add_argument(
        "--top-k", type=_positive_int, default=DEFAULT_TOP_K, metavar="N", help="labels per image"
    )
    label.add_argument(
        "--batch-size",
        type=_positive_int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help="images per model call",
    )
    label.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on stderr (default: when a folder is given and stderr is a "
        "terminal)",
    )
    label.set_defaults(run=run_label, parser=label)


def _add_submit_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], api_default: str
) -> None:
    submit = commands.add_parser(
        "submit",
        help="submit an image URL or upload a file to a running API",
        description="Submit an image URL (the service fetches it) or upload a local file, "
        "and print the image id (the record with --json).",
    )
    submit.add_argument("source", metavar="URL|PATH", help="an image URL or a local file")
    _add_api_option(submit, api_default)
    submit.add_argument(
        "--wait", action="store_true", help="wait until labelled, then print the labels"
    )
    submit.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_WAIT_SECONDS,
        metavar="SECONDS",
        help="how long --wait waits (default: %(default)g)",
    )
    submit.add_argument("--json", action="store_true", help="print the record as JSON")
    submit.set_defaults(run=run_submit, parser=submit)


def _add_get_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], api_default: str
) -> None:
    get = commands.add_parser(
        "get",
        help="print an image's status and labels from a running API",
        description="Print an image's status and labels (the record with --json).",
    )
    get.add_argument("image_id", metavar="ID", help="the image id that submit printed")
    _add_api_option(get, api_default)
    get.add_argument("--json", action="store_true", help="print the record as JSON")
    get.set_defaults(run=run_get, parser=get)


def _add_api_option(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--api",
        default=default,
        metavar="URL",
        help=f"the API's base URL (default: ${API_VARIABLE}, else {DEFAULT_API}; now %(default)s)",
    )
    # No default here: argparse would show it in --help.
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"the API key, sent as `Authorization: Bearer KEY` (default: ${API_KEY_VARIABLE}, "
        "which keeps it out of shell history and the process list); make one with "
        "`imagelabeller keys create --tenant NAME`",
    )


def _api_client(args: argparse.Namespace, environ: Mapping[str, str]) -> ApiClient:
    """The client of --api with the key of --api-key, else of $IMAGELABELLER_API_KEY; a
    usage error (exit 2) for a key that cannot be one."""
    key, source = api_key_given(args.api_key, environ)
    if key is not None and parse_key(key) is None:
        args.parser.error(
            f"the API key from {source} is not an ImageLabeller API key: keys read "
            "ilk_<16 hex digits>_<secret>, as `imagelabeller keys create` prints them"
        )
    args.key_source = source
    return ApiClient(args.api, api_key=key)


def api_key_given(flag: str | None, environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The key and where it came from: the flag wins over the environment; blank is none."""
    if flag is not None and flag.strip():
        return flag.strip(), "--api-key"
    from_environment = environ.get(API_KEY_VARIABLE, "").strip()
    if from_environment:
        return from_environment, f"${API_KEY_VARIABLE}"
    return None, None


def run_label(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    paths: list[Path] = args.paths
    missing = missing_paths(paths)
    if missing:
        args.parser.error(f"no such file or folder: {', '.join(map(str, missing))}")
    try:
        settings = Settings.from_environ(environ)
        labeller = onnx_labeller(settings)
    except (ConfigError, ModelMissing) as exc:
        complain(str(exc))
        return EXIT_USAGE
    files = candidates(paths)
    folder_given = any(path.is_dir() for path in paths)
    try:
        results = _label_printing_as_we_go(
            files, labeller, settings, args, show_progress=_wants_progress(args, folder_given)
        )
    except LabellerUnavailable as exc:
        complain(str(exc))
        return EXIT_FAILED
    if args.json:
        print(output.file_results_json(results))
    elif folder_given or len(results) > 1:
        print(output.label_summary(results), file=sys.stderr)
    if not files:
        complain(f"no files found in {', '.join(map(str, paths))}")
    return EXIT_FAILED if any(result.failed for result in results) else EXIT_OK


def _wants_progress(args: argparse.Namespace, folder_given: bool) -> bool:
    """As asked (--progress, --no-progress), else for folders when stderr is a terminal."""
    if args.progress is not None:
        return bool(args.progress)
    return folder_given and sys.stderr.isatty()


def _label_printing_as_we_go(
    files: Sequence[Candidate],
    labeller: Labeller,
    settings: Settings,
    args: argparse.Namespace,
    show_progress: bool,
) -> list[FileResult]:
    """Label the files; without --json, print each file's line as soon as it is known."""
    results: list[FileResult] = []
    with tqdm(
        total=len(files), unit="file", desc="labelling", file=sys.stderr, disable=not show_progress
    ) as progress:
        for result in label_files(
            files, labeller, settings.limits, args.top_k, args.batch_size, progress.update
        ):
            results.append(result)
            if not args.json:
                # Through tqdm, so that a progress bar on the same terminal is cleared
                # first and drawn again below the line.
                tqdm.write(output.file_result_line(result), file=sys.stdout)
    return results


def run_submit(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    source: str = args.source
    if not URL_SCHEME.match(source) and not Path(source).is_file():
        args.parser.error(f"{source!r} is neither a URL nor a file")
    client = _api_client(args, environ)
    try:
        record = _submit(client, source)
        if args.wait:
            image_id = str(record["image_id"])
            record = wait_until_finished(lambda: client.record(image_id), args.timeout)
    except ApiError as exc:
        complain(output.api_error_text(exc, args.key_source))
        return EXIT_FAILED
    except (ApiUnreachable, WaitTimedOut, OSError) as exc:
        complain(str(exc))
        return EXIT_FAILED
    if args.json:
        print(output.record_json(record))
    elif args.wait:
        print(output.record_line(record))
    else:
        print(record["image_id"])
    return EXIT_FAILED if record.get("status") == "FAILED" else EXIT_OK


def _submit(client: ApiClient, source: str) -> dict[str, Any]:
    if URL_SCHEME.match(source):
        return client.submit_url(source)
    data = Path(source).read_bytes()
    return client.submit_bytes(data, upload_media_type(data))


def run_get(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    client = _api_client(args, environ)
    try:
        record = client.record(args.image_id)
    except ApiError as exc:
        complain(output.api_error_text(exc, args.key_source))
        return EXIT_FAILED
    except ApiUnreachable as exc:
        complain(str(exc))
        return EXIT_FAILED
    print(output.record_json(record) if args.json else output.record_line(record))
    return EXIT_OK


def complain(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not more than 0")
    return value


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush does
    not fail again (the recipe in the `signal` module's documentation)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
