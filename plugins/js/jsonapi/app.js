// The `jsonapi` plugin: call JSON HTTP APIs on the hosts the operator granted.
//
// Written in JavaScript and built with `warden build` (componentize-js; see ../build.sh). `fetch()` is
// wasi:http underneath: warden checks every request against the plugin's `allow_hosts` and
// refuses the rest, and the refusal comes back here as a rejected promise.
//
// Each exported WIT interface is an exported object named after it (`api`), with one method per
// function in camelCase (`get-json` -> `getJson`). A WIT `result<T, string>` is returned as T or
// thrown as the error string. Async functions are fine: componentize-js runs the event loop until
// their promise settles.

import { log } from 'warden:mcp/host@0.1.0';

/** Bodies larger than this are refused: a tool answer should stay small. */
const MAX_BODY = 1024 * 1024;

/** Resolve an RFC 6901 JSON pointer in `value`. */
function select(value, pointer) {
  if (pointer === undefined || pointer === '') {
    return value;
  }
  if (!pointer.startsWith('/')) {
    throw `invalid pointer ${JSON.stringify(pointer)}: it must start with "/"`;
  }
  let current = value;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (current === null || typeof current !== 'object' || !(key in current)) {
      throw `pointer ${JSON.stringify(pointer)} selects nothing: no ${JSON.stringify(key)}`;
    }
    current = current[key];
  }
  return current;
}

/** Send one request and turn the answer into a `reply` record, or throw a message. */
async function request(url, init, pointer) {
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    // warden's refusal (or a connection failure) names the URL and the reason.
    throw `request to ${url} failed: ${error?.message ?? error}`;
  }
  const text = await response.text();
  if (text.length > MAX_BODY) {
    throw `the body of ${url} is over ${MAX_BODY} bytes`;
  }
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw `the body of ${url} (status ${response.status}) is not JSON`;
  }
  log('debug', `${init.method} ${url}: ${response.status}`);
  return {
    status: response.status,
    contentType: response.headers.get('content-type') ?? undefined,
    value: JSON.stringify(select(body, pointer)),
  };
}

export const api = {
  async getJson(url, pointer) {
    return request(url, { method: 'GET', headers: { accept: 'application/json' } }, pointer);
  },

  async postJson(url, body, pointer) {
    try {
      JSON.parse(body);
    } catch {
      throw 'body is not valid JSON';
    }
    return request(
      url,
      {
        method: 'POST',
        headers: { accept: 'application/json', 'content-type': 'application/json' },
        body,
      },
      pointer,
    );
  },
};
