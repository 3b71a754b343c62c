// The TypeScript SDK client (`@modelcontextprotocol/sdk`) of tests/prompts.rs and
// tests/resources.rs: over stdio, in a 2025-11-25 session, it lists warden's prompts and gets
// one, lists its resources and templates and reads some, completes an argument, subscribes
// to a resource and waits for the update a tool call causes; then prints one JSON line with
// what it saw.
//
// Usage: node surface_client.mjs PLAN_JSON
//
// PLAN = {"sdk": DIR (the @modelcontextprotocol/sdk package), "server": [COMMAND, ARG...],
//         "prompt": NAME, "args": {NAME: VALUE}                      (prompts)
//         "read": [URI, ...]                                         (resources)
//         "complete": {"ref": REF, "argument": NAME, "value": TEXT}  (completions)
//         "subscribe": URI, "update": {"tool": NAME, "arguments": {...}}} (subscriptions)
//
// Output: {"prompts", "messages", "resources", "templates", "contents", "completion",
//          "updated"} (the parts the plan asked for), or {"error": {"code", "message"}} /
//          {"exception": TEXT}.

import { pathToFileURL } from "node:url";
import { join } from "node:path";

const plan = JSON.parse(process.argv[2]);
const sdk = (path) => import(pathToFileURL(join(plan.sdk, "dist", "esm", path)).href);
const { Client } = await sdk("client/index.js");
const { StdioClientTransport } = await sdk("client/stdio.js");
const { McpError, ResourceUpdatedNotificationSchema } = await sdk("types.js");

const line = {};
const updated = [];
const client = new Client({ name: "warden-ts-test", version: "1.0.0" });
client.setNotificationHandler(ResourceUpdatedNotificationSchema, (notification) => {
  updated.push(notification.params.uri);
});

/** Wait (at most a minute) until `done()` holds. */
async function until(done) {
  const deadline = Date.now() + 60_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error("timed out waiting for a notification");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

try {
  const [command, ...args] = plan.server;
  await client.connect(new StdioClientTransport({ command, args, stderr: "ignore" }));
  if (plan.prompt) {
    const listed = await client.listPrompts();
    line.prompts = listed.prompts.map((p) => p.name);
    const result = await client.getPrompt({ name: plan.prompt, arguments: plan.args ?? {} });
    line.messages = result.messages.map((m) => ({
      role: m.role,
      type: m.content.type,
      text: m.content.text ?? null,
    }));
  }
  if (plan.read) {
    line.resources = (await client.listResources()).resources.map((r) => r.uri);
    const templates = await client.listResourceTemplates();
    line.templates = templates.resourceTemplates.map((t) => t.uriTemplate);
    line.contents = [];
    for (const uri of plan.read) {
      const result = await client.readResource({ uri });
      for (const c of result.contents) {
        line.contents.push({
          uri: c.uri,
          mime_type: c.mimeType ?? null,
          text: c.text ?? null,
          blob: c.blob ?? null,
        });
      }
    }
  }
  if (plan.complete) {
    const result = await client.complete({
      ref: plan.complete.ref,
      argument: { name: plan.complete.argument, value: plan.complete.value },
    });
    line.completion = result.completion;
  }
  if (plan.subscribe) {
    await client.subscribeResource({ uri: plan.subscribe });
    await client.callTool({ name: plan.update.tool, arguments: plan.update.arguments });
    await until(() => updated.includes(plan.subscribe));
    line.updated = updated;
  }
} catch (e) {
  if (e instanceof McpError) {
    line.error = { code: e.code, message: e.message };
  } else {
    line.exception = `${e?.name}: ${e?.message}`;
  }
} finally {
  await client.close().catch(() => {});
}
console.log(JSON.stringify(line));
