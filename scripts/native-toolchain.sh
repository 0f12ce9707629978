#!/usr/bin/env bash
# A C compiler and the Python headers, which `pip install` needs to build the native
# helpers (controller/repository/_dirscan.c, _filewrite.c): installed from Debian's packages
# when missing and run as root, else named in one line.
set -euo pipefail

python=${1:-python3}
headers=$("$python" -c 'import sysconfig; print(sysconfig.get_path("include"))')
command -v cc >/dev/null && [ -f "$headers/Python.h" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "native-toolchain: installing gcc and the Python headers"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq gcc libc6-dev python3-dev >/dev/null
    command -v cc >/dev/null && [ -f "$headers/Python.h" ] && exit 0
fi
echo "native-toolchain: Lifeboat builds a C module: install a C compiler and the headers of $python ($headers/Python.h), e.g. 'apt-get install gcc python3-dev', then run make again" >&2
exit 1
