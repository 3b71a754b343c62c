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
# Environment: see plugins/polyglot.sh, and
#   PYTHON              the Python used to create the virtualenv (default: python3, 3.10+)

set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
entry=app.py
# shellcheck source=../polyglot.sh
source "$here/../polyglot.sh"
venv="$toolchains/python"
stamp="$venv/.complete-componentize-py-$COMPONENTIZE_PY_VERSION"

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

# 2. Bundle CPython, the app and what it imports at build time. Built from a copy, so the
# interpreter's __pycache__ stays out of the source tree.
componentize() {
    local name="$1" plugin="$2" package="$3" output="$4"
    local src="$out/$name.src"
    rm -rf "$src"
    mkdir -p "$src"
    cp -R "$plugin/." "$src/"
    (
        cd "$src"
        "$venv/bin/componentize-py" -d "$root/wit" -d wit -w "$package/plugin" \
            componentize app -o "$output" >&2
    )
}

# 3. Build what changed, then embed the docs.
build_plugins "$stamp" "$@"
