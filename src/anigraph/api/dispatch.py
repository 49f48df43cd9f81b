"""One API request from raw bytes to the response envelope: authenticate, find the action,
check the sub-application, parse the parameters, run the handler, render."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from anigraph.api import envelope
from anigraph.api.errors import ApiError, Code, internal_error, invalid_action
from anigraph.api.params import parse
from anigraph.api.registry import Caller, load_actions
from anigraph.api.signing import verify_request
from anigraph.context import Context
from anigraph.services import keys

log = logging.getLogger("anigraph.api")


@dataclass(frozen=True)
class Outcome:
    body: bytes
    action: str
    code: str  # "" on success


def handle(
    ctx: Context,
    method: str,
    raw_query: str,
    headers: Mapping[str, str],
    body: bytes,
    request_id: str,
) -> Outcome:
    action_name = "-"
    try:
        key_sub_apps: dict[str, int] = {}

        def lookup_secret(secret_id: str) -> str | None:
            found = keys.lookup(ctx, secret_id)
            if found is None:
                return None
            key_sub_apps[secret_id] = found[1]
            return found[0]

        verified = verify_request(method, raw_query, headers, body, lookup_secret, time.time())
        action_name = verified.action
        actions = load_actions()
        if verified.action not in actions:
            raise invalid_action(verified.action)
        action = actions[verified.action]
        params = parse(action.schema, verified.params, flattened=verified.flattened)
        key_sub_app = key_sub_apps[verified.secret_id]
        asked = params.get("SubAppId") or key_sub_app
        if asked != key_sub_app:
            raise ApiError(
                Code.UNAUTHORIZED_OPERATION,
                f"This key belongs to SubAppId {key_sub_app}; it cannot act on SubAppId {asked}.",
            )
        caller = Caller(verified.secret_id, key_sub_app, request_id)
        data = action.handler(ctx, caller, params)
        log.info("api %s ok", action_name, extra={"request_id": request_id})
        return Outcome(envelope.success(request_id, data), action_name, "")
    except ApiError as error:
        log.info(
            "api %s %s: %s",
            action_name,
            error.code,
            error.message,
            extra={"request_id": request_id},
        )
        return Outcome(envelope.failure(request_id, error), action_name, error.code)
    except Exception:
        log.exception("api %s internal error", action_name, extra={"request_id": request_id})
        internal = internal_error()
        return Outcome(envelope.failure(request_id, internal), action_name, internal.code)
