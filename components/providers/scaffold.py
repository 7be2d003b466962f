"""The skeleton every dynamic provider here shares, written once.

A provider declares which inputs replace its resource, which update it and which are
secrets (kept in state only as a salted digest). ``diff`` compares them the same way
for every provider, then asks the provider's ``drift`` what ``read`` saw of the live
resource. A resource declares its inputs as a ``ResourceInputs`` dataclass; the
provider's ``resource_props`` turns them into the props the engine registers: secrets
wrapped, the provider version stamped, one empty slot per output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import pulumi
from pulumi.dynamic import DiffResult, ReadResult, ResourceProvider

from components.providers.observed import KEY as OBSERVED, observed
from components.providers.secret_digest import digest_matches, has_unknowns, make_digest, without
from repman.keys import coerce
from repman.spec import NAMESPACE, PROVISIONING_KEYS

DIGEST = "secret_digest"


def changed_keys(keys: Sequence[str], olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
    return [k for k in keys if olds.get(k) != news.get(k)]


class ScaffoldProvider(ResourceProvider):
    """check (the SDK's: inputs as given), diff, and the secret-digest outputs of one provider.

    Only class attributes: the engine stores a provider by reference to its class, and a
    provider object must carry no state of its own into the stack's state."""

    #: stamped into every resource's inputs: a change of it is an update of every resource
    version: ClassVar[str] = "1"
    #: inputs whose change replaces the resource (a new datadir, host, title...)
    replace_keys: ClassVar[tuple[str, ...]] = ()
    #: inputs whose change is an update in place
    input_keys: ClassVar[tuple[str, ...]] = ()
    #: inputs never stored: the outputs keep a salted digest of them instead
    secret_keys: ClassVar[tuple[str, ...]] = ()
    #: outputs the resource publishes (empty slots at registration)
    output_keys: ClassVar[tuple[str, ...]] = ()
    #: outputs an update never changes
    stables: ClassVar[tuple[str, ...] | None] = ("instance",)
    #: a replacement deletes the old resource first (it holds the port, datadir or name)
    delete_before_replace: ClassVar[bool] = True

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = changed_keys(self.replace_keys, olds, news)
        changed = changed_keys(self.input_keys, olds, news)
        if has_unknowns(news):              # preview: a value is not known yet
            changed.append("unknown")
        elif self.secret_keys and not digest_matches(olds.get(DIGEST), news, self.secret_keys):
            changed.append("secrets")
        elif not changed and not replaces:
            changed += self.drift(olds, news)
        return DiffResult(changes=bool(changed or replaces), replaces=replaces,
                          stables=None if self.stables is None else list(self.stables),
                          delete_before_replace=self.delete_before_replace)

    def drift(self, olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
        """Reasons the live resource (as ``read`` recorded it) differs from what ``news`` make; none here."""
        return []

    @classmethod
    def public_outputs(cls, props: Mapping[str, Any], digest: str | None = None) -> dict[str, Any]:
        """The props without their secrets, plus the digest (a fresh one unless ``digest`` is kept)."""
        return {**without(props, cls.secret_keys), DIGEST: digest or make_digest(props, cls.secret_keys)}

    @classmethod
    def kept_digest(cls, olds: Mapping[str, Any], news: Mapping[str, Any]) -> str | None:
        """The stored digest when the secrets did not change (no needless change of state), else None."""
        return olds.get(DIGEST) if digest_matches(olds.get(DIGEST), news, cls.secret_keys) else None

    @classmethod
    def resource_props(cls, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """What a resource of this provider registers: secrets wrapped, version, output slots."""
        props = dict(inputs)
        for key in cls.secret_keys:
            props[key] = pulumi.Output.secret(props[key])
        props["provider_version"] = cls.version
        props.update({k: None for k in cls.output_keys})
        return props


def resource_options(opts: pulumi.ResourceOptions | None, *, secret_outputs: Sequence[str] = (),
                     delete_before_replace: bool = False) -> pulumi.ResourceOptions:
    """The resource's own options under the caller's (``opts`` wins where both say something)."""
    base = pulumi.ResourceOptions(additional_secret_outputs=list(secret_outputs) or None,
                                  delete_before_replace=delete_before_replace or None)
    return pulumi.ResourceOptions.merge(base, opts)


@dataclass(kw_only=True)
class ResourceInputs:
    """A resource's inputs as keyword fields; ``inputs`` is what the resource registers."""

    #: fields left out while empty, so that stacks made before the field existed see no change
    omit_when_empty: ClassVar[tuple[str, ...]] = ()

    def inputs(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) or f.name not in self.omit_when_empty}


class ScaffoldResource(pulumi.dynamic.Resource):
    """A resource of one ``ScaffoldProvider``: subclasses name the provider and their options."""

    provider_class: ClassVar[type[ScaffoldProvider]]
    #: outputs Pulumi must keep encrypted in state
    secret_outputs: ClassVar[tuple[str, ...]] = ("secret_digest",)
    #: a replacement deletes the old resource first (the engine's option, beside the provider's answer)
    replace_after_delete: ClassVar[bool] = False

    def __init__(self, name: str, args: ResourceInputs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        inputs = args.inputs() if isinstance(args, ResourceInputs) else dict(args)
        super().__init__(self.provider_class(), name, self.provider_class.resource_props(inputs),
                         resource_options(opts, secret_outputs=self.secret_outputs,
                                          delete_before_replace=self.replace_after_delete))


def read_live(id_: str, props: dict[str, Any], pid: int | None, config: Path) -> ReadResult:
    """A local process and its config file as they are (gone: neither), for ``diff`` to compare."""
    if pid is None and not config.exists():
        return ReadResult(id_="", outs={})
    text = config.read_text() if config.exists() else None
    return ReadResult(id_=id_, outs={**props, "pid": pid or 0, OBSERVED: observed(pid is not None, text)})


def stack_config_value(config: Any, name: str) -> Any:
    """A ``repman:`` key from the stack config a provider's ``configure`` gets ({file: PATH} resolved).

    Secrets such as SSH keys and API credentials come this way, never as inputs: not in state."""
    raw = config.get(f"{NAMESPACE}:{name}")
    if isinstance(raw, str) and raw.strip().startswith("{"):
        try:
            raw = json.loads(raw)
        except ValueError:
            pass
    return coerce(PROVISIONING_KEYS[name], raw)
