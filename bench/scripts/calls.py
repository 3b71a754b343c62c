"""Sequential `tools/call` round trips to one tool of a `warden serve` child, for per-call counts.

    python3 bench/scripts/calls.py WARDEN MANIFEST py|js N ["perf stat -e page-faults -p PID"]

Starts `WARDEN serve --manifest MANIFEST`, makes 30 warm-up calls, then N calls of the Python
example's `textstats__text_stats` (path `/data/notes.txt`: grant a directory holding it as
`/data`) or the JS example's `jsonapi__post_json` (a body that is not JSON), and prints the
server's CPU time and minor page faults per call (from /proc) and the client's p50 and p95.
The optional last argument is a command started (PID replaced by the server's pid) before the
measured calls and stopped with SIGINT after them: `perf stat`, `perf record`, `strace -c -f`.
`PAUSE_MS` in the environment waits that long before each measured call.
"""

import json
import os
import subprocess
import sys
import time

warden, manifest, which, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
hook = sys.argv[5] if len(sys.argv) > 5 else None
call = {
    "py": {"name": "textstats__text_stats", "arguments": {"path": "/data/notes.txt", "top": 3}},
    "js": {"name": "jsonapi__post_json", "arguments": {"url": "http://127.0.0.1:9/e", "body": "x"}},
}[which]
server = subprocess.Popen(
    [warden, "serve", "--manifest", manifest],
    stdin=subprocess.PIPE,
    stdout=subprocess.PIPE,
    stderr=subprocess.DEVNULL,
    env=dict(os.environ, WARDEN_LOG="error"),
)
next_id = 0


def request(method, params):
    global next_id
    next_id += 1
    line = json.dumps({"jsonrpc": "2.0", "id": next_id, "method": method, "params": params})
    server.stdin.write((line + "\n").encode())
    server.stdin.flush()
    while True:
        message = json.loads(server.stdout.readline())
        if message.get("id") == next_id:
            return message


def counters():
    """The server's minor faults and CPU ticks so far."""
    fields = open(f"/proc/{server.pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[7]), int(fields[11]) + int(fields[12])


request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "calls.py", "version": "1"}})
server.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
server.stdin.flush()
for _ in range(30):
    reply = request("tools/call", call)
assert "result" in reply, reply
if hook:
    tool = subprocess.Popen("exec " + hook.replace("PID", str(server.pid)), shell=True)
    time.sleep(1.0)
pause = float(os.environ.get("PAUSE_MS", "0")) / 1000
samples = []
faults0, cpu0 = counters()
for _ in range(n):
    if pause:
        time.sleep(pause)
    sent = time.perf_counter()
    request("tools/call", call)
    samples.append(time.perf_counter() - sent)
faults1, cpu1 = counters()
if hook:
    tool.send_signal(2)
    tool.wait()
samples.sort()
ticks = os.sysconf("SC_CLK_TCK")
print("server cpu/call %.0f us, minor faults/call %.1f; client p50 %.1f us, p95 %.1f us (%d calls)" % (
    (cpu1 - cpu0) / ticks / n * 1e6, (faults1 - faults0) / n,
    samples[n // 2] * 1e6, samples[int(n * 0.95)] * 1e6, n))
server.stdin.close()
server.wait()
