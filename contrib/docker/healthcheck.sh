#!/usr/bin/env bash
# The container's health check (`warden-healthcheck [PORT]`): GET /healthz on 127.0.0.1:PORT
# (default 8080) answers 200 within 5 seconds. Plain bash (/dev/tcp): the image needs no curl.
set -euo pipefail
port=${1:-8080}
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
IFS= read -r -t 5 status <&3
[[ $status =~ ^HTTP/1\.[01]\ 200[[:space:]] ]]
