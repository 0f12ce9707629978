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
unset LIFEBOAT_PASSPHRASE BACKUP_ENCRYPTION_KEY
echo
echo "== starting the controller (Ctrl-C stops it)"
echo "The quickstart policy backs up $DEMO/data every minute and keeps the last three;"
echo "the first backup starts at the next full minute. Watch the status it writes into"
echo "$LIFEBOAT_RESOURCES/policies/quickstart-files.yaml, or run in another terminal:"
echo "  LIFEBOAT_RESOURCES=$LIFEBOAT_RESOURCES LIFEBOAT_CATALOG=$LIFEBOAT_CATALOG $LIFEBOAT get backups"
date >> "$DEMO/data/hello.txt"   # something new each run
exec "$LIFEBOAT" controller --resync-seconds 30
