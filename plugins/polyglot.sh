# Shared by plugins/python/build.sh and plugins/js/build.sh, which source it after setting
# `here` (their folder) and `entry` (the file every plugin folder holds: app.py, app.js).
# Both are thin wrappers over `warden build`, which does the work (toolchain install on first
# use, build, tool descriptions, a check, then the swap); see docs/AUTHORING.md.
#
# Environment:
#   WARDEN              the warden binary (default: `cargo run --release --quiet --`)
#   WARDEN_TOOLCHAINS   where toolchains are installed (default here: target/toolchains)
#   WARDEN_POLYGLOT_OUT where components are written (default: target/polyglot)

root="$(cd "$here/../.." && pwd)"
export WARDEN_TOOLCHAINS="${WARDEN_TOOLCHAINS:-$root/target/toolchains}"
out="${WARDEN_POLYGLOT_OUT:-$root/target/polyglot}"

warden() {
    if [ -n "${WARDEN:-}" ]; then
        "$WARDEN" "$@"
    else
        cargo run --release --quiet --manifest-path "$root/Cargo.toml" --bin warden -- "$@"
    fi
}

# build_plugins [NAME...]: `warden build` each named plugin of $here (default: every folder
# holding $entry) into $out/NAME.wasm; an up-to-date component is left as is.
build_plugins() {
    local names=("$@")
    if [ ${#names[@]} -eq 0 ]; then
        for dir in "$here"/*/; do
            [ -f "$dir/$entry" ] && names+=("$(basename "$dir")")
        done
    fi
    mkdir -p "$out"
    local name
    for name in "${names[@]}"; do
        warden build "$here/$name" -o "$out/$name.wasm" >&2
    done
}
