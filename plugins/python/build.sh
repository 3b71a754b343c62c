#!/usr/bin/env bash
# Build the Python plugins (plugins/python/NAME/) into WebAssembly components.
#
#     plugins/python/build.sh [NAME...]        # default: every plugin in plugins/python/
#
# Each is `warden build plugins/python/NAME -o target/polyglot/NAME.wasm`: componentize-py
# (installed under target/toolchains/python on first use), the tool descriptions, a check,
# then the swap. Environment: see plugins/polyglot.sh.

set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
entry=app.py
# shellcheck source=../polyglot.sh
source "$here/../polyglot.sh"
build_plugins "$@"
