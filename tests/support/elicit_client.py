"""The Python `mcp` client of tests/approval.rs: runs a plan of tool calls against warden and
prints one JSON line per call, so the Rust test can assert on what happened.

Usage: python elicit_client.py PLAN_JSON

PLAN = {"server": {"stdio": [COMMAND, ARG...]} | {"http": URL},
        "mode": "legacy" | "2026-07-28",
        "clients": [CLIENT | {"sleep": SECONDS}, ...]}
CLIENT = {"key": BEARER_KEY (HTTP) or absent,
          "elicit": true (default: declare elicitation, answer with the callback) | false,
          "sampling": false (default) | true (declare sampling, answer "echo: LAST MESSAGE"),
          "roots": false (default) | true (declare roots: file:///work/project "project"),
          "calls": [CALL, ...]}
CALL = {"name": NAME (to refer to its result later), "tool": TOOL, "args": {...},
        "prompt": true (get the prompt named TOOL with ARGS instead of calling a tool),
        "answers": [{"action": "accept"|"decline"|"cancel", "content": {...}}, ...]
                   (what the callback answers, in order; an unexpected question is cancelled),
        "lowlevel": true (one tools/call, no automatic rounds: for hand-made rounds),
        "state_of": NAME (lowlevel: send the requestState a previous call received),
        "tamper": true (change one character of that state),
        "responses": {KEY: ANSWER} (lowlevel: the inputResponses to send)}

Each line: {"name", "tool", "asked": [{"key", "message", "schema"} | {"key", "sample", ...} |
{"key", "roots"}], "is_error", "text"} for a result (a prompt's: its messages' texts), {"name", "tool", "state", "requests": {KEY: {"message", "schema"}}} for an
input_required result (lowlevel), {"name", "tool", "error": {"code", "message"}} for a JSON-RPC
error, {"name", "tool", "exception": TEXT} for anything else.
"""

import asyncio
import json
import sys

import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

PLAN = json.loads(sys.argv[1])
asked = []
answers = []
results = {}


async def on_elicit(ctx, params):
    asked.append({
        "key": str(ctx.request_id),
        "message": params.message,
        "schema": getattr(params, "requested_schema", None),
    })
    answer = answers.pop(0) if answers else {"action": "cancel"}
    return types.ElicitResult(action=answer["action"], content=answer.get("content"))


def stateless_key(ctx):
    """The input request's key, in the stateless era (in a session: a JSON-RPC id)."""
    return {"key": str(ctx.request_id)} if PLAN["mode"] == "2026-07-28" else {}


async def on_sample(ctx, params):
    asked.append({
        **stateless_key(ctx),
        "sample": [m.content.text for m in params.messages],
        "system": params.system_prompt,
        "max_tokens": params.max_tokens,
    })
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text="echo: " + params.messages[-1].content.text),
        model="test-model",
        stop_reason="endTurn",
    )


async def on_roots(ctx):
    asked.append({**stateless_key(ctx), "roots": True})
    return types.ListRootsResult(roots=[types.Root(uri="file:///work/project", name="project")])


def target(key):
    server = PLAN["server"]
    if "stdio" in server:
        command = server["stdio"]
        return StdioServerParameters(command=command[0], args=command[1:])
    headers = {"Authorization": f"Bearer {key}"} if key else None
    return streamable_http_client(server["http"], http_client=create_mcp_http_client(headers=headers))


def tampered(state):
    i = len(state) // 2
    return state[:i] + ("A" if state[i] != "A" else "B") + state[i + 1:]


async def call(client, spec):
    line = {"name": spec.get("name"), "tool": spec["tool"]}
    asked.clear()
    answers[:] = list(spec.get("answers", []))
    try:
        if spec.get("lowlevel"):
            state = None
            if "state_of" in spec:
                state = results[spec["state_of"]]["state"]
                if spec.get("tamper"):
                    state = tampered(state)
            responses = {k: types.ElicitResult(action=v["action"], content=v.get("content"))
                         for k, v in spec.get("responses", {}).items()} or None
            result = await client.session.call_tool(
                spec["tool"], spec["args"], allow_input_required=True,
                request_state=state, input_responses=responses)
        elif spec.get("prompt"):
            result = await client.get_prompt(spec["tool"], spec["args"])
        else:
            result = await client.call_tool(spec["tool"], spec["args"])
        if hasattr(result, "messages"):
            line["is_error"] = False
            line["text"] = "".join(getattr(m.content, "text", "") for m in result.messages)
        elif hasattr(result, "request_state"):
            line["state"] = result.request_state
            line["requests"] = {
                k: {"message": r.params.message, "schema": getattr(r.params, "requested_schema", None)}
                for k, r in (result.input_requests or {}).items()
            }
        else:
            line["is_error"] = bool(result.is_error)
            line["text"] = "".join(getattr(c, "text", "") for c in result.content)
    except MCPError as e:
        line["error"] = {"code": e.error.code, "message": e.error.message}
    except Exception as e:  # reported, so the Rust side shows it
        line["exception"] = f"{type(e).__name__}: {e}"
    line["asked"] = list(asked)
    if line.get("name"):
        results[line["name"]] = line
    print(json.dumps(line), flush=True)


async def main():
    for entry in PLAN["clients"]:
        if "sleep" in entry:
            await asyncio.sleep(entry["sleep"])
            continue
        callback = on_elicit if entry.get("elicit", True) else None
        sampling = on_sample if entry.get("sampling") else None
        roots = on_roots if entry.get("roots") else None
        async with Client(target(entry.get("key")), mode=PLAN["mode"],
                          elicitation_callback=callback, sampling_callback=sampling,
                          list_roots_callback=roots) as client:
            for spec in entry["calls"]:
                await asyncio.wait_for(call(client, spec), 60)


asyncio.run(main())
