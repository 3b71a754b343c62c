#!/usr/bin/env bash
# Build the Python plugins (plugins/python/NAME/) into WebAssembly components.
#
#     plugins/python/build.sh [NAME...]        # default: every plugin in plugins/python/
#
# A plugin is a folder with `app.py` (the code) and `wit/` (its WIT package, whose world is
# called `plugin` and includes warden:mcp/tool). For each one this script:
#
# 1. installs componentize-py (pinned below) into a virtualenv under target/toolchains/python
#    the first time (about 5 s; reused afterwards, reinstalled if incomplete);
# 2. runs `componentize-py -d wit -d PLUGIN/wit -w PACKAGE/plugin componentize app` in a copy
#    of the plugin's folder (target/polyglot/NAME.src), which bundles CPython, the app and the
#    modules it imports at build time into target/polyglot/NAME.wasm (about 18 MB, 15-40 s);
#    skipped when the component is newer than every input;
# 3. runs `warden embed-docs` so the tools get their WIT doc comments as descriptions.
#
# Environment:
#   WARDEN              the warden binary (default: `cargo run --release --quiet --`)
#   WARDEN_TOOLCHAINS   where toolchains are installed (default: target/toolchains)
#   WARDEN_POLYGLOT_OUT where components are written (default: target/polyglot)
#   PYTHON              the Python used to create the virtualenv (default: python3, 3.10+)

set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
toolchains="${WARDEN_TOOLCHAINS:-$root/target/toolchains}"
out="${WARDEN_POLYGLOT_OUT:-$root/target/polyglot}"
venv="$toolchains/python"
stamp="$venv/.complete-componentize-py-$COMPONENTIZE_PY_VERSION"

warden() {
    if [ -n "${WARDEN:-}" ]; then
        "$WARDEN" "$@"
    else
        cargo run --release --quiet --manifest-path "$root/Cargo.toml" --bin warden -- "$@"
    fi
}

# 1. The toolchain, installed once. A half-finished install has no stamp and is redone.
if [ ! -f "$stamp" ]; then
    echo "installing componentize-py $COMPONENTIZE_PY_VERSION into $venv" >&2
    rm -rf "$venv"
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "componentize-py==$COMPONENTIZE_PY_VERSION"
    "$venv/bin/componentize-py" --version >&2
    touch "$stamp"
fi

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for dir in "$here"/*/; do
        [ -f "$dir/app.py" ] && names+=("$(basename "$dir")")
    done
fi

mkdir -p "$out"
for name in "${names[@]}"; do
    plugin="$here/$name"
    if [ ! -f "$plugin/app.py" ] || [ ! -d "$plugin/wit" ]; then
        echo "error: $plugin has no app.py or no wit/ folder" >&2
        exit 1
    fi
    package="$(sed -n 's/^package \([a-z0-9:-]*\).*/\1/p' "$plugin"/wit/*.wit | head -n 1)"
    if [ -z "$package" ]; then
        echo "error: no \`package\` line in $plugin/wit/*.wit" >&2
        exit 1
    fi
    wasm="$out/$name.wasm"

    # 2. Build, unless the component is newer than everything it is made of.
    if [ ! -f "$wasm" ] || [ -n "$(find "$plugin" "$root/wit" "$stamp" -newer "$wasm" \
        -not -path '*/__pycache__*' -print -quit)" ]; then
        echo "building $name ($package/plugin) -> $wasm" >&2
        started=$SECONDS
        # Built from a copy, so the interpreter's __pycache__ stays out of the source tree.
        src="$out/$name.src"
        rm -rf "$src"
        mkdir -p "$src"
        cp -R "$plugin/." "$src/"
        (
            cd "$src"
            "$venv/bin/componentize-py" -d "$root/wit" -d wit -w "$package/plugin" \
                componentize app -o "$wasm.tmp" >&2
        )
        mv "$wasm.tmp" "$wasm"
        echo "built $name in $((SECONDS - started)) s" >&2
    else
        echo "$name is up to date: $wasm" >&2
    fi

    # 3. The tool descriptions (replaces any earlier copy; cheap).
    warden embed-docs "$wasm" --wit "$plugin/wit" >&2
done
