# Shared by plugins/python/build.sh and plugins/js/build.sh, which source it after setting
# `here` (their folder) and `entry` (the file every plugin folder holds: app.py, app.js).
#
# Environment:
#   WARDEN              the warden binary (default: `cargo run --release --quiet --`)
#   WARDEN_TOOLCHAINS   where toolchains are installed (default: target/toolchains)
#   WARDEN_POLYGLOT_OUT where components are written (default: target/polyglot)

root="$(cd "$here/../.." && pwd)"
toolchains="${WARDEN_TOOLCHAINS:-$root/target/toolchains}"
out="${WARDEN_POLYGLOT_OUT:-$root/target/polyglot}"

warden() {
    if [ -n "${WARDEN:-}" ]; then
        "$WARDEN" "$@"
    else
        cargo run --release --quiet --manifest-path "$root/Cargo.toml" --bin warden -- "$@"
    fi
}

# build_plugins STAMP [NAME...]: build each named plugin of $here (default: every folder holding
# $entry). A plugin needs $entry and a wit/ folder whose package has a world `plugin`. Its
# component is rebuilt, by the caller's `componentize NAME PLUGIN_DIR PACKAGE OUTPUT`, unless
# it is newer than the plugin's files, warden's WIT and STAMP (the toolchain's install); then
# `warden embed-docs` gives the tools their WIT doc comments as descriptions.
build_plugins() {
    local stamp="$1"
    shift
    local names=("$@")
    if [ ${#names[@]} -eq 0 ]; then
        for dir in "$here"/*/; do
            [ -f "$dir/$entry" ] && names+=("$(basename "$dir")")
        done
    fi

    mkdir -p "$out"
    local name plugin package wasm started
    for name in "${names[@]}"; do
        plugin="$here/$name"
        if [ ! -f "$plugin/$entry" ] || [ ! -d "$plugin/wit" ]; then
            echo "error: $plugin has no $entry or no wit/ folder" >&2
            exit 1
        fi
        package="$(sed -n 's/^package \([a-z0-9:-]*\).*/\1/p' "$plugin"/wit/*.wit | head -n 1)"
        if [ -z "$package" ]; then
            echo "error: no \`package\` line in $plugin/wit/*.wit" >&2
            exit 1
        fi
        wasm="$out/$name.wasm"

        if [ ! -f "$wasm" ] || [ -n "$(find "$plugin" "$root/wit" "$stamp" -newer "$wasm" \
            -not -path '*/__pycache__*' -print -quit)" ]; then
            echo "building $name ($package/plugin) -> $wasm" >&2
            started=$SECONDS
            componentize "$name" "$plugin" "$package" "$wasm.tmp"
            mv "$wasm.tmp" "$wasm"
            echo "built $name in $((SECONDS - started)) s" >&2
        else
            echo "$name is up to date: $wasm" >&2
        fi

        # The tool descriptions (replaces any earlier copy; cheap).
        warden embed-docs "$wasm" --wit "$plugin/wit" >&2
    done
}
