"""DescribeTaskDetail, DescribeTasks, ManageTask (spec 2.4)."""

from __future__ import annotations

from typing import Any

from anigraph.api.errors import ApiError, Code, invalid_parameter_value
from anigraph.api.params import STRING, UINT64, Field, Object
from anigraph.api.registry import Caller, action
from anigraph.context import Context
from anigraph.domain.wire import parse_iso
from anigraph.services import tasks

TASK_ID = Field(STRING, required=True, code=Code.INVALID_PARAMETER_VALUE_TASK_ID, max_length=128)


def _not_found(task_id: str) -> ApiError:
    return ApiError(
        Code.RESOURCE_NOT_FOUND, f"The task {task_id} does not exist (or is older than 3 days)."
    )


@action("DescribeTaskDetail", Object({"TaskId": TASK_ID}))
def describe_task_detail(ctx: Context, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    try:
        return tasks.detail(ctx, caller.sub_app_id, params["TaskId"])
    except tasks.TaskNotFound:
        raise _not_found(params["TaskId"]) from None


TIME_RANGE = Object({"After": Field(STRING), "Before": Field(STRING)})
SORT_BY = Object({"Field": Field(STRING, required=True), "Order": Field(STRING, required=True)})

DESCRIBE_TASKS = Object(
    {
        "Status": Field(
            STRING,
            code=Code.INVALID_PARAMETER_VALUE_STATUS,
            choices=frozenset({"WAITING", "PROCESSING", "FINISH"}),
        ),
        "FileId": Field(STRING, code=Code.INVALID_PARAMETER_VALUE_FILE_ID),
        "CreateTime": Field(TIME_RANGE),
        "FinishTime": Field(TIME_RANGE),
        "Sort": Field(SORT_BY, code=Code.INVALID_PARAMETER_VALUE_SORT),
        "Limit": Field(
            UINT64, default=10, code=Code.INVALID_PARAMETER_VALUE_LIMIT, minimum=1, maximum=100
        ),
        "ScrollToken": Field(STRING, default=""),
    }
)


@action("DescribeTasks", DESCRIBE_TASKS)
def describe_tasks(ctx: Context, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    sort = params.get("Sort") or {"Field": "CreateTime", "Order": "Desc"}
    if sort["Field"] not in ("CreateTime", "FinishTime") or sort["Order"].lower() not in (
        "asc",
        "desc",
    ):
        raise invalid_parameter_value(
            "Sort",
            "Field is CreateTime or FinishTime and Order Asc or Desc",
            Code.INVALID_PARAMETER_VALUE_SORT,
        )
    for name in ("CreateTime", "FinishTime"):
        for bound in ("After", "Before"):
            text = (params.get(name) or {}).get(bound)
            if text:
                try:
                    parse_iso(text)
                except ValueError:
                    raise invalid_parameter_value(
                        f"{name}.{bound}", "expected an ISO 8601 time"
                    ) from None
    try:
        found, token = tasks.search(
            ctx,
            caller.sub_app_id,
            status=params.get("Status"),
            file_id=params.get("FileId"),
            create_range=params.get("CreateTime"),
            finish_range=params.get("FinishTime"),
            sort_field=sort["Field"],
            descending=sort["Order"].lower() == "desc",
            limit=params["Limit"],
            scroll_token=params["ScrollToken"] or None,
        )
    except tasks.BadScrollToken:
        raise invalid_parameter_value("ScrollToken", "not a token this service returned") from None
    return {"TaskSet": found, "ScrollToken": token}


MANAGE_TASK = Object(
    {
        "TaskId": TASK_ID,
        "OperationType": Field(
            STRING,
            required=True,
            code=Code.INVALID_PARAMETER_VALUE_INVALID_OPERATION_TYPE,
            choices=frozenset({"Abort"}),
        ),
    }
)


@action("ManageTask", MANAGE_TASK)
def manage_task(ctx: Context, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    try:
        tasks.abort(ctx, caller.sub_app_id, params["TaskId"])
    except tasks.TaskNotFound:
        raise _not_found(params["TaskId"]) from None
    except tasks.NotWaiting:
        raise ApiError(
            Code.FAILED_OPERATION,
            "Only a WAITING task can be aborted; this one has started or ended.",
        ) from None
    return {}
