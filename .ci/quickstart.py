#!/usr/bin/env python3
"""Runs README.md's quick start exactly as written, so it cannot silently break.

Every command in the ```sh blocks between "## Quick start" and the next "## " heading is run
from the repository's root, as written:
- `... serve` is started, spoken to over stdio as an MCP client would (initialize,
  tools/list, one tools/call), and closed;
- every other command must exit 0 (`call` prints the tool's result);
- the test command (`cargo test --workspace`) is run by .ci/run itself, so here it is only
  checked to be the one .ci/run runs.
"""

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_COMMAND = "cargo test --workspace"


def quick_start_commands():
    text = (ROOT / "README.md").read_text()
    section = re.search(r"^## Quick start\n(.*?)^## ", text, re.S | re.M)
    if not section:
        sys.exit("README.md has no '## Quick start' section")
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section.group(1), re.S):
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def send(proc, message):
    proc.stdin.write(json.dumps(message) + "\n")
    proc.stdin.flush()


def answer(proc, id):
    """The response to request `id`, skipping notifications."""
    while True:
        line = proc.stdout.readline()
        if not line:
            sys.exit(f"the server closed stdout before answering request {id}")
        message = json.loads(line)
        if message.get("id") == id:
            if "error" in message:
                sys.exit(f"request {id} failed: {message['error']}")
            return message["result"]


def serve(command):
    proc = subprocess.Popen(
        shlex.split(command), cwd=ROOT, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    try:
        send(proc, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "quickstart", "version": "1"}}})
        info = answer(proc, 1)
        send(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        send(proc, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        tools = sorted(tool["name"] for tool in answer(proc, 2)["tools"])
        for expected in ("codec__hash", "files__list", "fetch__get"):
            if expected not in tools:
                sys.exit(f"`{command}`: tools/list lacks {expected}: {tools}")
        send(proc, {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "codec__hash", "arguments": {"algorithm": "sha256", "data": "hello"}}})
        result = answer(proc, 3)
        text = json.dumps(result)
        digest = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        if result.get("isError") or digest not in text:
            sys.exit(f"`{command}`: codec__hash returned {text}")
        print(f"ok: {command}: {info['serverInfo']['name']} serves {len(tools)} tools")
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            sys.exit(f"`{command}` did not exit when its stdin closed")


def main():
    commands = quick_start_commands()
    if TEST_COMMAND not in commands:
        sys.exit(f"README.md's quick start no longer runs `{TEST_COMMAND}`: update .ci/run")
    served = False
    for command in commands:
        if command == TEST_COMMAND:
            continue
        if command.endswith(" serve"):
            serve(command)
            served = True
            continue
        run = subprocess.run(shlex.split(command), cwd=ROOT, text=True, capture_output=True)
        if run.returncode != 0:
            sys.exit(f"`{command}` exited {run.returncode}:\n{run.stdout}{run.stderr}")
        print(f"ok: {command}: {run.stdout.strip()[:200]}")
    if not served:
        sys.exit("README.md's quick start no longer starts the server")


if __name__ == "__main__":
    main()
