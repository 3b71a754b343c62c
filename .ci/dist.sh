#!/usr/bin/env bash
# CI for the distribution files: the systemd unit (when systemd-analyze is installed) and the
# container image (when a Docker engine answers). Without an engine the image's steps are
# tested without a container by tests/cli.rs (`the_container_layout_serves_http_with_a_key_as_non_root`).
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v systemd-analyze >/dev/null; then
    # verify wants ExecStart's binary to exist: check a copy that runs one that does.
    unit_dir=$(mktemp -d)
    trap 'rm -rf "$unit_dir"' EXIT
    sed "s#/usr/local/bin/warden#$PWD/target/debug/warden#" contrib/systemd/warden.service \
        >"$unit_dir/warden.service"
    systemd-analyze verify "$unit_dir/warden.service"
    echo "systemd unit: verified"
else
    echo "systemd unit: not verified (no systemd-analyze)"
fi

if ! docker info >/dev/null 2>&1; then
    echo "container image: not built (no Docker engine); tests/cli.rs checked its layout"
    exit 0
fi

image=warden:ci
docker build --tag "$image" --build-arg WARDEN_COMMIT="$(git log -1 --format='%h %cs')" .
docker run --rm "$image" --version

# A key, as the documentation gives one.
keygen=$(docker run --rm "$image" keygen --principal ci)
key=$(head -n 1 <<<"$keygen")
sha256=$(sed -n 's/^sha256 = "\([0-9a-f]*\)"$/\1/p' <<<"$keygen")

# Without it, the image refuses to start.
if docker run --rm "$image" check >/dev/null 2>&1; then
    echo "error: the image's manifest was accepted without an API key" >&2
    exit 1
fi

container=$(docker run --detach --read-only --cap-drop ALL --publish 127.0.0.1::8080 \
    --env WARDEN_API_KEY_SHA256="$sha256" "$image")
trap 'docker rm --force "$container" >/dev/null; rm -rf "${unit_dir:-}"' EXIT
for _ in $(seq 60); do
    health=$(docker inspect --format '{{.State.Health.Status}}' "$container")
    [[ $health == healthy ]] && break
    sleep 2
done
if [[ $health != healthy ]]; then
    docker logs "$container" >&2
    echo "error: the container is $health" >&2
    exit 1
fi
port=$(docker port "$container" 8080/tcp | head -n 1)
port=${port##*:}

mcp() {
    curl --silent --show-error --output /dev/null --write-out '%{http_code}' \
        "http://127.0.0.1:$port/mcp" "$@" \
        -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
        -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"ci","version":"0"}}}'
}
unauthenticated=$(mcp)
authenticated=$(mcp -H "Authorization: Bearer $key")
if [[ $unauthenticated != 401 || $authenticated != 200 ]]; then
    docker logs "$container" >&2
    echo "error: without the key $unauthenticated (want 401), with it $authenticated (want 200)" >&2
    exit 1
fi
echo "container image: built, healthy, serves MCP with its key"
