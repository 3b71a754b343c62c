"""The Python `mcp` client of tests/prompts.rs and tests/resources.rs: lists warden's prompts
and gets one, or lists its resources and templates and reads some, then prints one JSON line
with what it saw.

Usage: python surface_client.py PLAN_JSON

PLAN = {"server": [COMMAND, ARG...] (stdio), "mode": "legacy" | "2026-07-28",
        "prompt": NAME, "args": {NAME: VALUE, ...}     (prompts)
        "read": [URI, ...]}                             (resources)

Output: {"prompts": [NAME, ...], "messages": [{"role", "type", "text"}, ...]} and/or
{"resources": [URI, ...], "templates": [URI_TEMPLATE, ...],
 "contents": [{"uri", "mime_type", "text", "blob"}, ...]}, or
{"error": {"code", "message"}} / {"exception": TEXT}.
"""

import asyncio
import json
import sys

from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

PLAN = json.loads(sys.argv[1])


async def prompts(client, line):
    listed = await client.list_prompts()
    line["prompts"] = [p.name for p in listed.prompts]
    result = await client.get_prompt(PLAN["prompt"], PLAN.get("args") or None)
    line["messages"] = [
        {"role": m.role, "type": m.content.type, "text": getattr(m.content, "text", None)}
        for m in result.messages
    ]


async def resources(client, line):
    listed = await client.list_resources()
    line["resources"] = [str(r.uri) for r in listed.resources]
    templates = await client.list_resource_templates()
    line["templates"] = [t.uri_template for t in templates.resource_templates]
    line["contents"] = []
    for uri in PLAN["read"]:
        result = await client.read_resource(uri)
        line["contents"] += [
            {
                "uri": str(c.uri),
                "mime_type": c.mime_type,
                "text": getattr(c, "text", None),
                "blob": getattr(c, "blob", None),
            }
            for c in result.contents
        ]


async def main():
    command = PLAN["server"]
    line = {}
    try:
        server = StdioServerParameters(command=command[0], args=command[1:])
        async with Client(server, mode=PLAN["mode"]) as client:
            if "prompt" in PLAN:
                await prompts(client, line)
            if "read" in PLAN:
                await resources(client, line)
    except MCPError as e:
        line["error"] = {"code": e.error.code, "message": e.error.message}
    except Exception as e:  # reported, so the Rust side shows it
        line["exception"] = f"{type(e).__name__}: {e}"
    print(json.dumps(line), flush=True)


asyncio.run(main())
