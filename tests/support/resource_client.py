"""The Python `mcp` client of tests/resources.rs: lists warden's resources and templates and
reads some, then prints one JSON line with what it saw.

Usage: python resource_client.py PLAN_JSON

PLAN = {"server": [COMMAND, ARG...] (stdio), "mode": "legacy" | "2026-07-28",
        "read": [URI, ...]}

Output: {"resources": [URI, ...], "templates": [URI_TEMPLATE, ...],
         "contents": [{"uri", "mime_type", "text", "blob"}, ...]}, or
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
    except MCPError as e:
        line["error"] = {"code": e.error.code, "message": e.error.message}
    except Exception as e:  # reported, so the Rust side shows it
        line["exception"] = f"{type(e).__name__}: {e}"
    print(json.dumps(line), flush=True)


asyncio.run(main())
