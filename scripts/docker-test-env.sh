#!/usr/bin/env bash
# The Docker engine and the local images the test suite uses; each step is skipped when done.
#   lifeboat-test/busybox:1   busybox-static and its applet links (web-like app containers)
#   lifeboat-test/db:2        Debian bookworm with PostgreSQL and MariaDB (database containers)
#   lifeboat-test/debian:bookworm  a minimal Debian bookworm, the base the Dockerfile is built on
# and docker-compose, which runs examples/deploy/compose.yaml in its test. Images are built
# here from folders (no registry is reachable), then pushed to a registry on loopback
# (Debian's docker-registry), as hosts get their images from one: so they carry registry
# digests, and `include.images: auto` leaves them out of backups as it would Docker Hub's.
set -euo pipefail

log() { echo "docker-test-env: $*"; }

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v busybox >/dev/null || [ -x /bin/busybox ] || need+=(busybox-static)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
    log "starting dockerd"
    nohup dockerd >/var/log/lifeboat-dockerd.log 2>&1 &
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 0.5
    done
    docker info >/dev/null 2>&1 || { tail -20 /var/log/lifeboat-dockerd.log; log "dockerd did not start"; exit 1; }
fi

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

if ! image_exists lifeboat-test/busybox:1; then
    log "building lifeboat-test/busybox:1"
    dir=$(mktemp -d)
    mkdir -p "$dir/bin" "$dir/tmp" "$dir/etc" "$dir/data"
    cp "$(command -v busybox || echo /bin/busybox)" "$dir/bin/busybox"
    for applet in $("$dir/bin/busybox" --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$dir/bin/$applet"
    done
    echo "root:x:0:0:root:/root:/bin/sh" >"$dir/etc/passwd"
    echo "root:x:0:" >"$dir/etc/group"
    tar -C "$dir" -c . | docker import -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - lifeboat-test/busybox:1 >/dev/null
    rm -rf "$dir"
fi

# The database image is two layers: Debian with PostgreSQL and MariaDB (slow to make), and
# the entrypoint on it (rebuilt in a second when db-entrypoint.sh changes: bump DB_IMAGE).
DB_IMAGE=lifeboat-test/db:3
if ! image_exists lifeboat-test/db-base:1 && image_exists lifeboat-test/db:2; then
    docker tag lifeboat-test/db:2 lifeboat-test/db-base:1  # an earlier image: the same Debian layer
fi
if ! image_exists lifeboat-test/db-base:1; then
    log "building lifeboat-test/db-base:1 (debootstrap, about two minutes)"
    dir=$(mktemp -d)
    debootstrap --variant=minbase --include=postgresql,mariadb-server,mariadb-client bookworm "$dir" \
        http://deb.debian.org/debian >/tmp/lifeboat-debootstrap.log 2>&1 \
        || { tail -20 /tmp/lifeboat-debootstrap.log; log "debootstrap failed"; exit 1; }
    # Packages start their own clusters and services at install; the image starts clean.
    rm -rf "$dir/var/lib/postgresql/"* "$dir/var/lib/mysql/"* "$dir/var/cache/apt/archives/"*.deb
    tar -C "$dir" -c . | docker import \
        -c 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'ENV LANG=C.UTF-8' - lifeboat-test/db-base:1 >/dev/null
    rm -rf "$dir"
fi
if ! image_exists "$DB_IMAGE"; then
    log "building $DB_IMAGE (the entrypoint on lifeboat-test/db-base:1)"
    dir=$(mktemp -d)
    install -m 0755 "$(dirname "$0")/db-entrypoint.sh" "$dir/db-entrypoint"
    printf '%s\n' 'FROM lifeboat-test/db-base:1' 'COPY db-entrypoint /usr/local/bin/db-entrypoint' \
        'ENTRYPOINT ["/usr/local/bin/db-entrypoint"]' >"$dir/Dockerfile"
    docker build --quiet --tag "$DB_IMAGE" "$dir" >/dev/null
    rm -rf "$dir"
fi
if ! image_exists lifeboat-test/debian:bookworm; then
    log "building lifeboat-test/debian:bookworm (debootstrap, under a minute)"
    dir=$(mktemp -d)
    debootstrap --variant=minbase bookworm "$dir" http://deb.debian.org/debian >/tmp/lifeboat-debootstrap.log 2>&1 \
        || { tail -20 /tmp/lifeboat-debootstrap.log; log "debootstrap failed"; exit 1; }
    rm -rf "$dir/var/cache/apt/archives/"*.deb "$dir/var/lib/apt/lists/"*
    tar -C "$dir" -c . | docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/bash"]' - lifeboat-test/debian:bookworm >/dev/null
    rm -rf "$dir"
fi
# Names the official images would have, so that discovery by image name is exercised too.
docker tag "$DB_IMAGE" lifeboat-test/mariadb:10.11
docker tag "$DB_IMAGE" lifeboat-test/postgres:15

REGISTRY=localhost:5000
if ! curl -sf "http://$REGISTRY/v2/" >/dev/null; then
    log "starting the registry on $REGISTRY"
    mkdir -p /var/lib/lifeboat-registry
    printf '%s\n' 'version: 0.1' 'storage:' '  filesystem:' '    rootdirectory: /var/lib/lifeboat-registry' \
        'http:' '  addr: 127.0.0.1:5000' >/var/lib/lifeboat-registry/config.yml
    nohup docker-registry serve /var/lib/lifeboat-registry/config.yml >/var/log/lifeboat-registry.log 2>&1 &
    for _ in $(seq 1 40); do
        curl -sf "http://$REGISTRY/v2/" >/dev/null && break
        sleep 0.25
    done
    curl -sf "http://$REGISTRY/v2/" >/dev/null || { tail -20 /var/log/lifeboat-registry.log; log "no registry"; exit 1; }
fi
for image in lifeboat-test/busybox:1 "$DB_IMAGE"; do
    if [ "$(docker image inspect -f '{{len .RepoDigests}}' "$image")" = 0 ]; then
        log "pushing $image to $REGISTRY (once)"
        docker tag "$image" "$REGISTRY/$image"
        docker push --quiet "$REGISTRY/$image" >/dev/null
    fi
done
log "ready"
