#!/bin/sh
# Entrypoint of the lifeboat-test/db image: behaves like the official postgres and mariadb
# images for what Lifeboat's tests use (POSTGRES_USER/PASSWORD/DB, MARIADB_ROOT_PASSWORD or
# MYSQL_ROOT_PASSWORD, MYSQL_DATABASE, and the *_FILE forms of the passwords, which name a
# Docker secret's file): initialise the data volume on first start, then run the server in
# the foreground. Local socket connections inside the container are trusted
# (postgres) or need the root password (mariadb), as in the official images.
set -eu

sql_quote() { printf '%s' "$1" | sed "s/'/''/g"; }

# As the official images' file_env: VAR from the file named by VAR_FILE when VAR is unset.
file_env() {
    eval "file=\${${1}_FILE:-}"
    if [ -n "$file" ]; then
        value=$(cat "$file")
        export "$1=$value"
    fi
}
for variable in POSTGRES_PASSWORD MARIADB_ROOT_PASSWORD MYSQL_ROOT_PASSWORD MARIADB_PASSWORD MYSQL_PASSWORD; do
    file_env "$variable"
done

case "${1:-}" in
postgres)
    PGDATA=${PGDATA:-/var/lib/postgresql/data}
    user=${POSTGRES_USER:-postgres}
    mkdir -p "$PGDATA" /run/postgresql
    chown -R postgres:postgres "$PGDATA" /run/postgresql
    chmod 700 "$PGDATA"
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        pwfile=$(mktemp)
        printf '%s' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}" >"$pwfile"
        chown postgres "$pwfile"
        runuser -u postgres -- initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" \
            --auth-local=trust --auth-host=scram-sha-256 >/dev/null
        rm -f "$pwfile"
        echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
        echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
        if [ -n "${POSTGRES_DB:-}" ] && [ "$POSTGRES_DB" != "$user" ] || [ "$user" != postgres ]; then
            # A private socket: nobody mistakes this short-lived setup server for the real one.
            mkdir -p /run/postgresql/setup && chown postgres /run/postgresql/setup
            runuser -u postgres -- pg_ctl -D "$PGDATA" -w start \
                -o "-c listen_addresses='' -c unix_socket_directories=/run/postgresql/setup" >/dev/null
            runuser -u postgres -- createdb -h /run/postgresql/setup -U "$user" "${POSTGRES_DB:-$user}"
            runuser -u postgres -- pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
        fi
    fi
    exec runuser -u postgres -- postgres -D "$PGDATA"
    ;;
mariadb | mysqld | mariadbd)
    datadir=/var/lib/mysql
    password=${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:?MARIADB_ROOT_PASSWORD or MYSQL_ROOT_PASSWORD is required}}
    database=${MARIADB_DATABASE:-${MYSQL_DATABASE:-}}
    mkdir -p "$datadir" /run/mysqld
    chown -R mysql:mysql "$datadir" /run/mysqld
    if [ ! -d "$datadir/mysql" ]; then
        mariadb-install-db --user=mysql --datadir="$datadir" --auth-root-authentication-method=normal >/dev/null
        # Setup runs on a private socket: nobody mistakes this server for the real one.
        mariadbd --user=mysql --datadir="$datadir" --skip-networking --socket=/run/mysqld/init.sock &
        pid=$!
        for _ in $(seq 1 60); do
            mariadb-admin --socket=/run/mysqld/init.sock -uroot ping >/dev/null 2>&1 && break
            sleep 0.5
        done
        quoted=$(sql_quote "$password")
        mariadb --socket=/run/mysqld/init.sock -uroot <<SQL
ALTER USER 'root'@'localhost' IDENTIFIED BY '$quoted';
CREATE USER 'root'@'%' IDENTIFIED BY '$quoted';
GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;
${database:+CREATE DATABASE IF NOT EXISTS \`$database\`;}
SQL
        kill "$pid"
        wait "$pid" || true
    fi
    exec mariadbd --user=mysql --datadir="$datadir" --bind-address=0.0.0.0
    ;;
*)
    exec "$@"
    ;;
esac
