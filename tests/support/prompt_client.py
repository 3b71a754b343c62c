"""The Python `mcp` client of tests/prompts.rs: lists warden's prompts and gets one, then
prints one JSON line with what it saw.

Usage: python prompt_client.py PLAN_JSON

PLAN = {"server": [COMMAND, ARG...] (stdio), "mode": "legacy" | "2026-07-28",
        "prompt": NAME, "args": {NAME: VALUE, ...}}

Output: {"prompts": [NAME, ...], "messages": [{"role", "type", "text"}, ...]}, or
{"error": {"code", "message"}} / {"exception": TEXT}.
"""

import asyncio
import json
import sys

from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

PLAN = json.loads(sys.argv[1])


async def main():
    command = PLAN["server"]
    line = {}
    try:
        server = StdioServerParameters(command=command[0], args=command[1:])
        async with Client(server, mode=PLAN["mode"]) as client:
            listed = await client.list_prompts()
            line["prompts"] = [p.name for p in listed.prompts]
            result = await client.get_prompt(PLAN["prompt"], PLAN.get("args") or None)
            line["messages"] = [
                {"role": m.role, "type": m.content.type, "text": getattr(m.content, "text", None)}
                for m in result.messages
            ]
    except MCPError as e:
        line["error"] = {"code": e.error.code, "message": e.error.message}
    except Exception as e:  # reported, so the Rust side shows it
        line["exception"] = f"{type(e).__name__}: {e}"
    print(json.dumps(line), flush=True)


asyncio.run(main())
