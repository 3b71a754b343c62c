#!/usr/bin/env bash
# Lays out the files of warden's runtime image under ROOT, where the image's / has them:
#
#     contrib/docker/layout.sh ROOT [WARDEN_BINARY] [PLUGIN_DIR]
#
# The Dockerfile's build stage runs it into /out, which the runtime stage copies to /; the
# container test (tests/cli.rs, `the_container_layout_serves_http_with_a_key_as_non_root`) runs
# it into a temporary directory. Who owns the two volumes is the caller's business: the
# Dockerfile gives them to the `warden` user.
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
root=${1:?usage: layout.sh ROOT [WARDEN_BINARY] [PLUGIN_DIR]}
binary=${2:-$src/target/release/warden}
plugins=${3:-$src/target/plugins/wasm32-wasip2/release}

install -D -m 0755 "$binary" "$root/usr/local/bin/warden"
install -D -m 0755 "$src/contrib/docker/healthcheck.sh" "$root/usr/local/bin/warden-healthcheck"
install -D -m 0644 "$src/contrib/docker/warden.toml" "$root/etc/warden/warden.toml"
for plugin in files codec fetch; do
    install -D -m 0644 "$plugins/$plugin.wasm" "$root/usr/share/warden/plugins/$plugin.wasm"
done
# What the `files` plugin may read until a volume is mounted over it.
mkdir -p "$root/workspace"
cp -R "$src/examples/workspace/." "$root/workspace/"
chmod -R u=rwX,go=rX "$root/workspace"
# The volumes: the compile cache (warden refuses one others can write) and the audit log.
install -d -m 0700 "$root/var/cache/warden" "$root/var/log/warden"
