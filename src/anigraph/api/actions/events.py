"""Event notification actions (spec 2.7): configuration and the PULL queue.

The rules live in ``anigraph.notify``; this module maps parameters in and errors out.
"""

from __future__ import annotations

from typing import Any

from anigraph.api.errors import ApiError, Code, invalid_parameter_value
from anigraph.api.params import STRING, Array, Field, Object
from anigraph.api.registry import Caller, action
from anigraph.context import Context
from anigraph.notify import config, pull

_SWITCH = Field(STRING, choices=frozenset(config.SWITCH_VALUES))
_EXT_INFO = Field(STRING)

DESCRIBE_EVENT_CONFIG = Object({})

MODIFY_EVENT_CONFIG = Object(
    {
        "Mode": Field(STRING, choices=frozenset({"PUSH", "PULL"})),
        "NotificationUrl": Field(STRING, max_length=config.MAX_URL),
        "UploadMediaCompleteEventSwitch": _SWITCH,
        "DeleteMediaCompleteEventSwitch": _SWITCH,
        "PersistenceCompleteEventSwitch": _SWITCH,
        "SignKey": Field(STRING, max_length=32),
    }
)

PULL_EVENTS = Object({"ExtInfo": _EXT_INFO})

CONFIRM_EVENTS = Object(
    {
        "EventHandles": Field(Array(STRING), required=True, max_items=pull.MAX_EVENTS),
        "ExtInfo": _EXT_INFO,
    }
)

DESCRIBE_EVENTS_STATE = Object({})


@action("DescribeEventConfig", DESCRIBE_EVENT_CONFIG)
def describe_event_config(ctx: Context, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    return config.describe(ctx, caller.sub_app_id)


@action("ModifyEventConfig", MODIFY_EVENT_CONFIG)
def modify_event_config(ctx: Context, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    sign_key = params.get("SignKey")
    if sign_key is not None and not config.SIGN_KEY.fullmatch(sign_key):
        raise invalid_parameter_value("SignKey", "only letters and digits, at most 32")
    changes = config.Changes(
        mode=params.get("Mode"),
        # Present and "" clears the URL; absent leaves it.
        notification_url=params.get("NotificationUrl"),
        upload_switch=params.get("UploadMediaCompleteEventSwitch"),
        delete_switch=params.get("DeleteMediaCompleteEventSwitch"),
        persistence_switch=params.get("PersistenceCompleteEventSwitch"),
        sign_key=sign_key,
    )
    try:
        config.modify(ctx, caller.sub_app_id, changes)
    except config.BadCallbackUrl as exc:
        raise invalid_parameter_value("NotificationUrl", str(exc)) from None
    except ValueError as exc:
        raise ApiError(Code.INVALID_PARAMETER_VALUE, str(exc)) from None
    return {}


@action("PullEvents", PULL_EVENTS)
def pull_events(ctx: Context, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    return {"EventSet": pull.pull(ctx, caller.sub_app_id)}


@action("ConfirmEvents", CONFIRM_EVENTS)
def confirm_events(ctx: Context, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    handles: list[str] = params["EventHandles"]
    if not handles:
        raise invalid_parameter_value("EventHandles", "at least one event handle is needed")
    try:
        pull.confirm(ctx, caller.sub_app_id, handles)
    except pull.HandleError as exc:
        raise invalid_parameter_value("EventHandles", str(exc)) from None
    return {}


@action("DescribeEventsState", DESCRIBE_EVENTS_STATE)
def describe_events_state(ctx: Context, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    return {"CountOfEventsToPull": pull.count_to_pull(ctx, caller.sub_app_id)}
