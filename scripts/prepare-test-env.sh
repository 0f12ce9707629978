#!/usr/bin/env bash
# Install what the test suite needs on a fresh Debian machine; a no-op when already there.
# Services themselves are started by the test fixtures (tests/support/), on loopback only.
set -euo pipefail

need_apt=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || need_apt+=(postgresql)

if ((${#need_apt[@]})); then
    echo "prepare-test-env: installing ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
    # The Debian package starts a cluster of its own; the tests start theirs, so stop it.
    command -v pg_ctlcluster >/dev/null && { service postgresql stop >/dev/null 2>&1 || true; }
fi
echo "prepare-test-env: ready"
