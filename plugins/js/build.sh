#!/usr/bin/env bash
# Build the JavaScript plugins (plugins/js/NAME/) into WebAssembly components.
#
#     plugins/js/build.sh [NAME...]            # default: every plugin in plugins/js/
#
# Each is `warden build plugins/js/NAME -o target/polyglot/NAME.wasm`: componentize-js
# (installed with npm under target/toolchains/js on first use), the tool descriptions, a check,
# then the swap. Environment: see plugins/polyglot.sh.

set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
entry=app.js
# shellcheck source=../polyglot.sh
source "$here/../polyglot.sh"
build_plugins "$@"
