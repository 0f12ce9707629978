"""Pieces every kind shares: metadata, conditions, secret references, the generation hash.

Models here validate shape only; they do no I/O and read no clock.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

ApiVersion = Literal["lifeboat.io/v1alpha1"]
API_VERSION: ApiVersion = "lifeboat.io/v1alpha1"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# Tags of tagged unions (a URL written inline or as a secret reference): error paths leave them out.
INLINE, REFERENCE = "inline", "reference"
UNION_TAGS = frozenset({INLINE, REFERENCE})


class Model(BaseModel):
    """Base of every resource model: camelCase in YAML, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=False,
    )


def check_dns_label(value: str) -> str:
    """Names end up in file names, tags and URLs: keep them to RFC 1123 labels."""
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(
            f"expected a DNS label (lowercase letters, digits and '-', starting and ending "
            f"with a letter or digit, at most 63 characters), got {value!r}"
        )
    return value


DnsLabel = Annotated[str, AfterValidator(check_dns_label)]


class ObjectMeta(Model):
    name: DnsLabel = Field(description="Unique name among resources of this kind.")
    labels: dict[str, str] = Field(default_factory=dict, description="Free-form labels for selection.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Free-form notes for tools.")
    generation: str | None = Field(
        default=None,
        description="Derived by Lifeboat: a stable hash of spec. Any value written here is ignored.",
    )


class SecretRef(Model):
    """Where a secret is read from at use time. Secret values never appear in YAML."""

    env: str | None = Field(default=None, description="Name of an environment variable holding the secret.")
    file: str | None = Field(default=None, description="Path of a file holding the secret (trailing newline dropped).")

    @model_validator(mode="before")
    @classmethod
    def _refuse_inline(cls, value: Any) -> Any:
        if isinstance(value, str | int | float | bool):
            raise ValueError("inline secret values are not allowed; use a reference: {env: VARIABLE} or {file: /path}")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("expected exactly one of 'env' or 'file'")
        if self.env is not None and not _ENV_NAME.match(self.env):
            raise ValueError(f"env: expected an environment variable name, got {self.env!r}")
        if self.file is not None and not self.file.startswith("/"):
            raise ValueError(f"file: expected an absolute path, got {self.file!r}")
        return self


class ConditionStatus(StrEnum):
    TRUE = "True"  # the condition holds
    FALSE = "False"  # the condition does not hold
    UNKNOWN = "Unknown"  # not yet determined


class StatusMode(StrEnum):
    INLINE = "inline"  # status is written into the resource's own document
    SIDECAR = "sidecar"  # status goes to `<file>.status.yaml`, leaving git-managed files untouched


class Condition(Model):
    type: str = Field(description="What the condition is about: Ready, Succeeded, Reconciling, ...")
    status: ConditionStatus
    reason: str = Field(description="One CamelCase word for machines.")
    message: str = Field(default="", description="One sentence for people.")
    last_transition_time: datetime = Field(description="When status last changed.")
    observed_generation: str | None = None


def set_condition(conditions: list[Condition], new: Condition) -> list[Condition]:
    """Return conditions with `new` in place of its type, keeping the old transition time
    when the status did not change (Kubernetes semantics)."""
    result: list[Condition] = []
    replaced = False
    for existing in conditions:
        if existing.type != new.type:
            result.append(existing)
            continue
        replaced = True
        if existing.status == new.status:
            result.append(new.model_copy(update={"last_transition_time": existing.last_transition_time}))
        else:
            result.append(new)
    if not replaced:
        result.append(new)
    return result


def find_condition(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def spec_generation(spec: Any) -> str:
    """A stable hash of a spec as written: equal specs give equal generations on any host."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
