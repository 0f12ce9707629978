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
echo "== a backup of $DEMO/data into the quickstart repository (passphrase from the storage's secret file)"
unset LIFEBOAT_PASSPHRASE BACKUP_ENCRYPTION_KEY
"$LIFEBOAT" repo --storage quickstart snapshots >/dev/null 2>&1 || "$LIFEBOAT" repo --storage quickstart init
date >> "$DEMO/data/hello.txt"   # something new each run, so the incremental has work to do
"$LIFEBOAT" repo --storage quickstart backup "$DEMO/data" --tag policy=quickstart-files
"$LIFEBOAT" repo --storage quickstart snapshots
"$LIFEBOAT" repo --storage quickstart check
echo
echo "The resources are loaded and valid, and the repository holds real backups. The"
echo "controller that runs policy schedules by itself is the next piece to build (issue:"
echo "The controller); until then, backups are taken with \`lifeboat repo ... backup\`."
