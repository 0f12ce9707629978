"""An app's images, saved with its backup and given back on restore: `docker save` read as
a stream into the repository (unchanged layers dedup to nothing at the next backup), `docker
load` from it, a pull for an image a registry can give, and its tag put back."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator

from docker.errors import ImageNotFound
from docker.utils import parse_repository_tag

from controller.apps.definition import ImageRecord
from controller.apps.docker_api import DockerClient, docker_errors
from controller.errors import LifeboatError, RestoreFailed
from controller.resources.backup_policy import ImagesMode


def should_save(image: ImageRecord, mode: ImagesMode) -> bool:
    """auto: only an image no registry can give back (built or loaded on this host)."""
    return mode == ImagesMode.ALWAYS or (mode == ImagesMode.AUTO and not image.digests)


def image_stream(client: DockerClient, image: ImageRecord) -> ChunkReader:
    """`docker save` of one image, read as a file (started at the first read)."""

    def chunks() -> Iterator[bytes]:
        with docker_errors(f"saving image {image.reference}"):
            yield from client.api.get_image(_saved_name(client, image))

    return ChunkReader(chunks())


def _saved_name(client: DockerClient, image: ImageRecord) -> str:
    """The reference when it still names this image (the tag travels in the tar), else the ID."""
    try:
        current = client.api.inspect_image(image.reference)["Id"]  # type: ignore[no-untyped-call]
    except ImageNotFound:
        return image.image_id
    return image.reference if current == image.image_id else image.image_id


def image_present(client: DockerClient, image_id: str) -> bool:
    try:
        client.api.inspect_image(image_id)  # type: ignore[no-untyped-call]
    except ImageNotFound:
        return False
    return True


def load_image(client: DockerClient, image: ImageRecord, tar: Iterable[bytes]) -> None:
    """`docker load` the saved image, then tag it as the app's containers name it."""
    with docker_errors(f"loading image {image.reference} from the backup"):
        client.api.load_image(iter(tar))  # type: ignore[no-untyped-call]
    if not image_present(client, image.image_id):
        raise RestoreFailed(f"loading image {image.reference} from the backup did not give image {image.image_id}")
    tag_image(client, image)


def pull_image(client: DockerClient, image: ImageRecord) -> None:
    """Pull the image by its registry digest (the exact image backed up), then tag it."""
    for digest in image.digests:
        repository, _, reference = digest.partition("@")
        try:
            with docker_errors(f"pulling {digest}"):
                client.api.pull(repository, reference)
        except LifeboatError:
            continue
        if image_present(client, image.image_id):
            tag_image(client, image)
            return
    raise RestoreFailed(
        f"image {image.reference} ({image.image_id}) could not be pulled from {', '.join(image.digests)}"
    )


def tag_image(client: DockerClient, image: ImageRecord) -> None:
    if image.reference.startswith("sha256:"):
        return  # a container made from a bare image ID: nothing to tag
    repository, tag = parse_repository_tag(image.reference)
    with docker_errors(f"tagging image {image.image_id} as {image.reference}"):
        client.api.tag(image.image_id, repository, tag or "latest", force=True)


class ChunkReader(io.RawIOBase):
    """Chunks read as a file (the archiver reads its streams as files)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks, self._rest = iter(chunks), b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._rest:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._rest = chunk
        size = min(len(target), len(self._rest))
        target[:size] = self._rest[:size]
        self._rest = self._rest[size:]
        return size
