"""The Python `mcp` client of tests/tasks.rs: calls a tool that warden runs as a task
(io.modelcontextprotocol/tasks, SEP-2663, in the 2026-07-28 era) through the SDK's extension
surface (`ClientExtension` with a `ResultClaim` for `resultType: "task"`), which polls
`tasks/get` until the task ends; then prints one JSON line with what it saw.

Usage: python tasks_client.py PLAN_JSON

PLAN = {"server": [COMMAND, ARG...] (stdio), "tool": NAME, "args": {...}}

Output: {"created": {"taskId", "status", "ttlMs", "pollIntervalMs"}, "polls": N,
         "status": FINAL_STATUS, "text": TEXT, "is_error": BOOL}, or
{"error": {"code", "message"}} / {"exception": TEXT}.
"""

import asyncio
import json
import sys
from typing import Any, Literal

from mcp import Client, StdioServerParameters
from mcp.client import ClaimContext, ClientExtension, ResultClaim
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, Request, RequestParams, Result
from pydantic import ConfigDict

PLAN = json.loads(sys.argv[1])
SEEN: dict[str, Any] = {}
TASKS = "io.modelcontextprotocol/tasks"


class TaskIdParams(RequestParams):
    task_id: str


class GetTask(Request[TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    name_param = "taskId"


class CreateTaskResult(Result):
    model_config = ConfigDict(extra="allow")
    result_type: Literal["task"]
    task_id: str
    status: str
    ttl_ms: int | None = None
    poll_interval_ms: int | None = None


class DetailedTask(Result):
    model_config = ConfigDict(extra="allow")
    task_id: str
    status: str
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


async def resolve(created: CreateTaskResult, ctx: ClaimContext) -> CallToolResult:
    SEEN["created"] = {
        "taskId": created.task_id,
        "status": created.status,
        "ttlMs": created.ttl_ms,
        "pollIntervalMs": created.poll_interval_ms,
    }
    polls = 0
    while True:
        polls += 1
        task = await ctx.session.send_request(
            GetTask(params=TaskIdParams(task_id=created.task_id)), DetailedTask
        )
        if task.status in ("completed", "failed", "cancelled"):
            break
        await asyncio.sleep((created.poll_interval_ms or 200) / 1000)
    SEEN["polls"] = polls
    SEEN["status"] = task.status
    if task.error is not None:
        SEEN["task_error"] = task.error
        return CallToolResult(content=[], is_error=True)
    return CallToolResult.model_validate(task.result or {"content": []})


class Tasks(ClientExtension):
    identifier = TASKS

    def claims(self):
        return [ResultClaim(result_type="task", model=CreateTaskResult, resolve=resolve)]


async def main():
    command = PLAN["server"]
    line = {}
    try:
        server = StdioServerParameters(command=command[0], args=command[1:])
        async with Client(server, mode="2026-07-28", extensions=[Tasks()]) as client:
            result = await client.call_tool(PLAN["tool"], PLAN.get("args") or {})
            line.update(SEEN)
            line["text"] = "".join(getattr(c, "text", "") for c in result.content)
            line["is_error"] = bool(result.is_error)
    except MCPError as e:
        line["error"] = {"code": e.error.code, "message": e.error.message}
    except Exception as e:  # noqa: BLE001 - reported to the Rust test
        line["exception"] = f"{type(e).__name__}: {e}"
    print(json.dumps(line))


asyncio.run(main())
