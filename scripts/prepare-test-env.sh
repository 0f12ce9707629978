#!/usr/bin/env bash
# Install what the test suite needs on a fresh Debian machine; a no-op when already there.
# PostgreSQL and SeaweedFS are started by the test fixtures (tests/support/), on loopback only;
# the Docker engine is started here when none runs.
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
# The Docker engine and the suite's images (busybox; Debian with PostgreSQL and MariaDB).
"$(dirname "$0")/docker-test-env.sh"
echo "prepare-test-env: ready"
