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
# Needs Node 18 or later and npm. Environment:
#   WARDEN              the warden binary (default: `cargo run --release --quiet --`)
#   WARDEN_TOOLCHAINS   where toolchains are installed (default: target/toolchains)
#   WARDEN_POLYGLOT_OUT where components are written (default: target/polyglot)

set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
toolchains="${WARDEN_TOOLCHAINS:-$root/target/toolchains}"
out="${WARDEN_POLYGLOT_OUT:-$root/target/polyglot}"
tools="$toolchains/js"
# The stamp names the exact package.json installed: a new pin reinstalls.
stamp="$tools/.complete-$(sha256sum "$here/package.json" | cut -c1-16)"

warden() {
    if [ -n "${WARDEN:-}" ]; then
        "$WARDEN" "$@"
    else
        cargo run --release --quiet --manifest-path "$root/Cargo.toml" --bin warden -- "$@"
    fi
}

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

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for dir in "$here"/*/; do
        [ -f "$dir/app.js" ] && names+=("$(basename "$dir")")
    done
fi

mkdir -p "$out"
for name in "${names[@]}"; do
    plugin="$here/$name"
    if [ ! -f "$plugin/app.js" ] || [ ! -d "$plugin/wit" ]; then
        echo "error: $plugin has no app.js or no wit/ folder" >&2
        exit 1
    fi
    package="$(sed -n 's/^package \([a-z0-9:-]*\).*/\1/p' "$plugin"/wit/*.wit | head -n 1)"
    if [ -z "$package" ]; then
        echo "error: no \`package\` line in $plugin/wit/*.wit" >&2
        exit 1
    fi
    wasm="$out/$name.wasm"

    # 2. Build, unless the component is newer than everything it is made of.
    if [ ! -f "$wasm" ] || [ -n "$(find "$plugin" "$root/wit" "$stamp" -newer "$wasm" -print -quit)" ]; then
        echo "building $name ($package/plugin) -> $wasm" >&2
        started=$SECONDS
        wit="$out/$name.wit"
        rm -rf "$wit"
        mkdir -p "$wit"
        cp -R "$plugin/wit/." "$wit/"
        if [ ! -d "$wit/deps/warden-mcp" ]; then
            mkdir -p "$wit/deps/warden-mcp"
            cp "$root/wit/mcp.wit" "$wit/deps/warden-mcp/mcp.wit"
        fi
        (cd "$tools" && node componentize.mjs "$plugin/app.js" "$wit" "$package/plugin" "$wasm.tmp" >&2)
        mv "$wasm.tmp" "$wasm"
        echo "built $name in $((SECONDS - started)) s" >&2
    else
        echo "$name is up to date: $wasm" >&2
    fi

    # 3. The tool descriptions (replaces any earlier copy; cheap).
    warden embed-docs "$wasm" --wit "$plugin/wit" >&2
done
