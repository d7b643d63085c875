"""Who is calling: the API key check that every route but the open ones passes, and the
caller it finds.

app.py runs it as a Chalice middleware, so the check is the same code under `chalice
local`, in Chalice's test client and behind API Gateway (where it runs in the API's own
function: no authorizer cache, so a revoked key is refused from the next request on).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from chalice.app import Request

from chalicelib.config import Settings
from chalicelib.domain.api_keys import Principal
from chalicelib.domain.errors import Unauthorized
from chalicelib.domain.models import LEGACY_TENANT
from chalicelib.quotas import Quotas
from chalicelib.submission import Submission

# (method, route) that need no key: liveness, the page and the API's description, and
# local mode's upload form target, which its signed fields authorise (as S3's policy
# authorises a presigned POST there). No keyed route shares their paths, so any method on
# them passes the check, and one they do not take gets Chalice's 405 with or without a key.
OPEN_ROUTES = frozenset(
    {
        ("GET", "/"),
        ("GET", "/health"),
        ("GET", "/openapi.json"),
        ("POST", "/uploads/{image_id}"),
    }
)
# The original's routes: without a key they are the `legacy` tenant's, where the stage
# keeps them open (Settings.legacy_routes_open); with one, the key's tenant's.
OPEN_PATHS = frozenset(path for _, path in OPEN_ROUTES)
LEGACY_ROUTES = frozenset({("GET", "/submit-image"), ("GET", "/get-image-label")})
LEGACY_CALLER = Principal(key_id=LEGACY_TENANT, tenant=LEGACY_TENANT)
# Every caller, when keys are switched off (local measurements only: config.py).
UNCHECKED_CALLER = Principal(key_id="unchecked", tenant=LEGACY_TENANT)
# Where the caller is kept on the request: the place and shape an API Gateway authorizer
# would give it.
CONTEXT_KEY = "authorizer"

NO_KEY = "this route needs an API key: send it as `Authorization: Bearer <key>`"
BAD_KEY = "the API key is not valid: unknown, revoked or mistyped"


class KeyCheck(Protocol):
    def authenticate(self, presented: str) -> Principal | None: ...


def identify(request: Request, settings: Settings, keys: KeyCheck) -> Principal | None:
    """The caller of `request`; None on an open route. Raises Unauthorized when a key is
    needed and none (or no valid one) came with it."""
    route = route_of(request)
    if is_open(route):
        return None
    if not settings.require_api_keys:
        return UNCHECKED_CALLER
    key = presented_key(request.headers)
    if key is None and route in LEGACY_ROUTES and settings.legacy_routes_open:
        return LEGACY_CALLER
    if key is None:
        raise Unauthorized(NO_KEY)
    caller = keys.authenticate(key)
    if caller is None:
        raise Unauthorized(BAD_KEY)
    return caller


def check_caller(
    request: Request,
    settings: Settings,
    keys: KeyCheck,
    admit: Callable[[str], None],
) -> None:
    """Identify the caller, hold it to its key's request rate (`admit` raises
    TooManyRequests), and keep it on the request for the route's handler."""
    caller = identify(request, settings, keys)
    if caller is None:
        return
    if caller != UNCHECKED_CALLER:
        admit(caller.key_id)
    context = request.context if request.context is not None else {}
    context[CONTEXT_KEY] = {"principalId": caller.key_id, "tenant": caller.tenant}
    request.context = context


def caller_of(request: Request) -> Principal:
    """The caller check_caller found for this request."""
    found = (request.context or {}).get(CONTEXT_KEY)
    if not isinstance(found, Mapping) or "tenant" not in found:
        raise AssertionError("the route's caller was not checked (an open route?)")
    return Principal(key_id=str(found["principalId"]), tenant=str(found["tenant"]))


def charged_images[T](
    quotas: Quotas,
    caller: Principal,
    count: int,
    work: Callable[[], T],
    accepted: Callable[[T], int],
) -> T:
    """Run `work`, which may accept up to `count` images, within the caller's daily image
    quota: reserved first (TooManyRequests if the day has no room), and what it did not
    accept (refused, or known already) given back."""
    if caller == UNCHECKED_CALLER:
        return work()
    reservation = quotas.reserve_images(caller.key_id, count)
    taken = 0
    try:
        result = work()
        taken = accepted(result)
        return result
    finally:
        reservation.settle(taken)


def new_images(submission: Submission) -> int:
    """What a submit costs of the day's images: an answer for bytes the tenant sent
    before costs nothing."""
    return 1 if submission.created else 0


def presented_key(headers: Mapping[str, Any]) -> str | None:
    """The key of an `Authorization: Bearer <key>` header, or None."""
    value = headers.get("authorization")
    if not isinstance(value, str):
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def is_open(route: tuple[str, str]) -> bool:
    return route[1] in OPEN_PATHS


def route_of(request: Request) -> tuple[str, str]:
    return str(request.method).upper(), str((request.context or {}).get("resourcePath", ""))
