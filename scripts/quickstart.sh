#!/usr/bin/env bash
# `make run`: Lifeboat on its embedded defaults (SQLite catalog, local repository) and the
# quickstart examples. Everything lives under .lifeboat/ and /tmp/lifeboat-quickstart/.
set -euo pipefail
LIFEBOAT=${LIFEBOAT:-lifeboat}
HERE=$(pwd)
DEMO=/tmp/lifeboat-quickstart

export LIFEBOAT_RESOURCES="$HERE/.lifeboat/resources"
export LIFEBOAT_CATALOG="sqlite:///$HERE/.lifeboat/catalog.db"

mkdir -p "$DEMO/data" "$LIFEBOAT_RESOURCES"
# No built-in key: the quickstart makes a random passphrase once and keeps it beside the demo.
if [ ! -s "$DEMO/passphrase" ]; then
    (umask 077 && head -c 32 /dev/urandom | base64 > "$DEMO/passphrase")
fi
[ -e "$DEMO/data/hello.txt" ] || echo "hello from the Lifeboat quickstart" > "$DEMO/data/hello.txt"

echo "== validating examples/quickstart"
"$LIFEBOAT" validate -f examples/quickstart
echo "== applying them into $LIFEBOAT_RESOURCES"
"$LIFEBOAT" apply -f examples/quickstart
echo "== storages"
"$LIFEBOAT" get storages
echo "== policies"
"$LIFEBOAT" get policies
echo "== backups in the catalog ($LIFEBOAT_CATALOG)"
"$LIFEBOAT" get backups
echo
echo "The resources are loaded and valid. The controller that runs their schedules is not"
echo "built yet (issue: The controller); until then this is what Lifeboat can do here."
