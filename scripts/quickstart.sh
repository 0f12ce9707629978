#!/usr/bin/env bash
# `make run`: Lifeboat on its embedded defaults (SQLite catalog, local repository) and the
# quickstart examples. Everything lives under .lifeboat/ and /tmp/lifeboat-quickstart/.
set -euo pipefail
LIFEBOAT=${LIFEBOAT:-lifeboat}
HERE=$(pwd)
DEMO=/tmp/lifeboat-quickstart

export LIFEBOAT_RESOURCES="$HERE/.lifeboat/resources"
export LIFEBOAT_CATALOG="sqlite:///$HERE/.lifeboat/catalog.db"
export LIFEBOAT_API_KEYS_FILE="$HERE/.lifeboat/api-keys.yaml"
LISTEN=${LIFEBOAT_API_LISTEN:-127.0.0.1:8080}

mkdir -p "$DEMO/data" "$LIFEBOAT_RESOURCES"
# Everything a second terminal needs, for `. .lifeboat/env` (the README's next steps).
cat > "$HERE/.lifeboat/env" <<EOF
# Written by \`make run\`: source it in another terminal in the checkout (. .lifeboat/env).
export LIFEBOAT_RESOURCES="$LIFEBOAT_RESOURCES"
export LIFEBOAT_CATALOG="$LIFEBOAT_CATALOG"
export LIFEBOAT_API_KEYS_FILE="$LIFEBOAT_API_KEYS_FILE"
export LIFEBOAT_API_URL="http://$LISTEN"
export PATH="$(cd "$(dirname "$(command -v "$LIFEBOAT")")" && pwd):\$PATH"
EOF
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
# An API key for the demo, made once; only its hash is in the keys file.
if [ ! -s "$HERE/.lifeboat/quickstart-api-key" ]; then
    (umask 077 && "$LIFEBOAT" apikey create quickstart > "$HERE/.lifeboat/quickstart-api-key" 2>/dev/null)
    echo "== made an API key for the demo: .lifeboat/quickstart-api-key (the keys file keeps only its hash)"
fi
echo
echo "== starting the controller (Ctrl-C stops it)"
echo "The quickstart policy backs up $DEMO/data every minute and keeps the last three;"
echo "the first backup starts at the next full minute. Watch the status it writes into"
echo "$LIFEBOAT_RESOURCES/policies/quickstart-files.yaml, or in another terminal in this folder:"
echo "  . .lifeboat/env && lifeboat get backups"
echo "or ask the REST API (key in .lifeboat/quickstart-api-key; docs at http://$LISTEN/docs):"
echo "  curl -s -H \"X-API-Key: \$(cat .lifeboat/quickstart-api-key)\" \$LIFEBOAT_API_URL/api/v1/backups"
echo "and restore the latest backup of the folder (the README's quickstart shows it step by step):"
echo "  lifeboat repo --storage quickstart restore latest --path paths$DEMO/data --target $DEMO/data"
date >> "$DEMO/data/hello.txt"   # something new each run
exec "$LIFEBOAT" controller --resync-seconds 30 --listen "$LISTEN"
