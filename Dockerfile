# Lifeboat's controller image: Debian bookworm's Python 3.11 with Lifeboat in a virtualenv,
# and the PostgreSQL and MariaDB client tools.
#   docker build -t lifeboat:0.1.0 .
# It runs as the unprivileged user `lifeboat` by default, which is enough for the CLI,
# `lifeboat api` and repository work. The controller reads every volume and restores
# owners, so examples/deploy/compose.yaml and the Helm chart run it as uid 0 with only
# the file capabilities that needs (no other root powers, read-only root filesystem).
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build
# Behind a TLS-inspecting proxy, give its CA certificates (PEM text) to reach PyPI:
#   --build-arg EXTRA_CA_CERTS="$(cat /usr/local/share/ca-certificates/*.crt)"
# They are used by this build stage only; the image itself does not trust them.
ARG EXTRA_CA_CERTS=""
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
        gcc libc6-dev python3-dev \
    && rm -rf /var/lib/apt/lists/* \
    && if [ -n "$EXTRA_CA_CERTS" ]; then \
        printf '%s\n' "$EXTRA_CA_CERTS" > /usr/local/share/ca-certificates/build-extra.crt && update-ca-certificates >/dev/null; \
    fi
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/lifeboat
# Dependencies first (a layer that survives source changes), then Lifeboat itself. The
# walk's directory scanner and the restore's batch writer are C (controller/repository/
# _dirscan.c, _filewrite.c): gcc and the Python headers build them here, in this stage only.
COPY pyproject.toml README.md /src/
COPY controller/repository/_dirscan.c controller/repository/_filewrite.c /src/controller/repository/
RUN touch /src/controller/__init__.py /src/controller/repository/__init__.py \
    && /opt/lifeboat/bin/pip install --no-cache-dir --quiet /src && rm -rf /src/build
COPY controller /src/controller
RUN /opt/lifeboat/bin/pip install --no-cache-dir --quiet --no-deps --force-reinstall /src \
    && /opt/lifeboat/bin/lifeboat --help >/dev/null

FROM ${BASE}
# Client tools for checking a restored database by hand (dumps and loads themselves run
# inside the database's own container, so they always match the server's version).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 ca-certificates tini postgresql-client mariadb-client \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/lifeboat --no-create-home lifeboat \
    && install -d -o lifeboat -g lifeboat -m 0750 /var/lib/lifeboat
COPY --from=build /opt/lifeboat /opt/lifeboat
# Catalog, resources and API keys under /var/lib/lifeboat (mount a volume there);
# the API listens on all of the container's addresses (every /api/v1 route needs a key).
ENV PATH=/opt/lifeboat/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    XDG_DATA_HOME=/var/lib \
    LIFEBOAT_API_LISTEN=0.0.0.0:8080 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER lifeboat
WORKDIR /var/lib/lifeboat
EXPOSE 8080
VOLUME /var/lib/lifeboat
ENTRYPOINT ["/usr/bin/tini", "--", "lifeboat"]
CMD ["controller", "--log-format", "json"]
