// The TypeScript SDK client of tests/tasks.rs (@modelcontextprotocol/sdk 1.32.2, the one the
// conformance suite installs). That SDK implements only the 2025-11-25 experimental tasks
// (`capabilities.tasks`, a `task` parameter on tools/call, tasks/result), which rmcp 3.9 and
// so warden do not serve; it does carry `capabilities.extensions`. So this client opens a
// 2025-11-25 session declaring the io.modelcontextprotocol/tasks extension (SEP-2663) and
// drives that extension's wire through the SDK's generic `request()`: tools/call returns a
// CreateTaskResult, tasks/get is polled until the task ends. Prints one JSON line.
//
// Usage: node tasks_client.mjs SDK_DIR PLAN_JSON
// PLAN = {"server": [COMMAND, ARG...] (stdio), "tool": NAME, "args": {...}}

import { pathToFileURL } from "node:url";
import path from "node:path";

const [sdkDir, planJson] = process.argv.slice(2);
const plan = JSON.parse(planJson);
const load = (p) => import(pathToFileURL(path.join(sdkDir, "dist/esm", p)).href);
const { Client } = await load("client/index.js");
const { StdioClientTransport } = await load("client/stdio.js");
const { z } = await import(pathToFileURL(path.join(sdkDir, "..", "..", "zod", "v4", "index.js")).href);

const Any = z.object({}).passthrough();
const line = {};
try {
  const client = new Client(
    { name: "warden-tasks-test", version: "0" },
    { capabilities: { extensions: { "io.modelcontextprotocol/tasks": {} } } },
  );
  const [command, ...args] = plan.server;
  await client.connect(new StdioClientTransport({ command, args, stderr: "ignore" }));
  line.extension = Boolean(
    client.getServerCapabilities()?.extensions?.["io.modelcontextprotocol/tasks"],
  );
  const created = await client.request(
    { method: "tools/call", params: { name: plan.tool, arguments: plan.args ?? {} } },
    Any,
  );
  line.created = { resultType: created.resultType, taskId: created.taskId, status: created.status };
  let task;
  let polls = 0;
  for (;;) {
    polls += 1;
    task = await client.request(
      { method: "tasks/get", params: { taskId: created.taskId } },
      Any,
    );
    if (["completed", "failed", "cancelled"].includes(task.status)) break;
    await new Promise((r) => setTimeout(r, Math.min(task.pollIntervalMs ?? 200, 500)));
  }
  line.polls = polls;
  line.status = task.status;
  line.text = (task.result?.content ?? []).map((c) => c.text ?? "").join("");
  line.is_error = Boolean(task.result?.isError);
  await client.close();
} catch (e) {
  line.exception = `${e?.name}: ${e?.message}`;
}
console.log(JSON.stringify(line));
