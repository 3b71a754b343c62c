#!/usr/bin/env bash
# Build the JavaScript plugins (plugins/js/NAME/) into WebAssembly components.
#
#     plugins/js/build.sh [NAME...]            # default: every plugin in plugins/js/
#
# A plugin is a folder with `app.js` (an ES module) and `wit/` (its WIT package, whose world is
# called `plugin` and includes warden:mcp/tool). For each one this script:
#
# 1. installs componentize-js and jco (pinned in package.json) with npm under
#    target/toolchains/js the first time (about 30 s and 385 MB; reused afterwards,
#    reinstalled if incomplete);
# 2. stages the plugin's WIT with warden's contract in `deps/` (componentize-js takes one WIT
#    folder) and runs componentize.mjs, which embeds the SpiderMonkey engine and the module into
#    target/polyglot/NAME.wasm (about 12 MB, 10-25 s); skipped when the component is newer than
#    every input;
# 3. runs `warden embed-docs` so the tools get their WIT doc comments as descriptions.
#
# Needs Node 18 or later and npm. Environment: see plugins/polyglot.sh.

set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
entry=app.js
# shellcheck source=../polyglot.sh
source "$here/../polyglot.sh"
tools="$toolchains/js"
# The stamp names the exact package.json installed: a new pin reinstalls.
stamp="$tools/.complete-$(sha256sum "$here/package.json" | cut -c1-16)"

# 1. The toolchain, installed once. A half-finished install has no stamp and is redone.
if [ ! -f "$stamp" ]; then
    echo "installing componentize-js and jco into $tools" >&2
    rm -rf "$tools"
    mkdir -p "$tools"
    cp "$here/package.json" "$tools/package.json"
    (cd "$tools" && npm install --no-audit --no-fund --loglevel=error >&2)
    touch "$stamp"
fi
cp "$here/componentize.mjs" "$tools/componentize.mjs"

# 2. Stage the plugin's WIT with warden's contract in deps/ (componentize-js takes one WIT
# folder), then embed SpiderMonkey and the module.
componentize() {
    local name="$1" plugin="$2" package="$3" output="$4"
    local wit="$out/$name.wit"
    rm -rf "$wit"
    mkdir -p "$wit"
    cp -R "$plugin/wit/." "$wit/"
    if [ ! -d "$wit/deps/warden-mcp" ]; then
        mkdir -p "$wit/deps/warden-mcp"
        cp "$root/wit/mcp.wit" "$wit/deps/warden-mcp/mcp.wit"
    fi
    (cd "$tools" && node componentize.mjs "$plugin/app.js" "$wit" "$package/plugin" "$output" >&2)
}

# 3. Build what changed, then embed the docs.
build_plugins "$stamp" "$@"
