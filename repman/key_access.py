"""Typed reads of validated key values, with the default and the type taken from the key tables.

A call site names only the key (``cfg.flag("semisync")``): restating a default
there lets it drift from the table that validation, the docs and the Nix schema
use. Asking for a key no table declares, or reading it as another type than the
table declares, is a programming error and raises at once, naming the key.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import Any, Mapping, Sequence

from repman.db import Credential, ServerAddress
from repman.keys import Key

#: the table kinds each accessor reads (enum and path values are strings too)
_TEXT_KINDS = ("str", "path", "enum")


class KeyKindError(TypeError):
    """A key read with an accessor that does not match the kind its table declares."""


class TypedKeys(ABC):
    """Accessors shared by every holder of validated values; subclasses say where a key lives."""

    @abstractmethod
    def key_definition(self, name: str) -> Key:
        """The table entry of ``name``; KeyError when no table of this holder declares it."""

    @abstractmethod
    def raw_value(self, name: str) -> Any:
        """The validated value, or None when the holder has none (the table's default applies)."""

    def _read(self, name: str, kinds: Sequence[str], accessor: str) -> Any:
        key = self.key_definition(name)
        if key.kind not in kinds:
            raise KeyKindError(f"{name} is a {key.kind} key, not read by {accessor}()")
        value = self.raw_value(name)
        # absent (a config validated against fewer tables, or a partial one in tests): the table's default
        return copy.copy(key.default) if value is None else value

    def flag(self, name: str) -> bool:
        return bool(self._read(name, ("bool",), "flag"))

    def integer(self, name: str) -> int:
        return int(self._read(name, ("int",), "integer"))

    def seconds(self, name: str) -> float:
        """Every float key of the tables is a duration in seconds."""
        return float(self._read(name, ("float",), "seconds"))

    def text(self, name: str) -> str:
        return str(self._read(name, _TEXT_KINDS, "text"))

    def optional_text(self, name: str) -> str | None:
        """``None`` when the key is unset or empty, for optional paths and scripts."""
        return self.text(name) or None

    def strings(self, name: str) -> list[str]:
        return [str(v) for v in self._read(name, ("strlist",), "strings")]

    def hosts(self, name: str) -> list[ServerAddress]:
        return list(self._read(name, ("hostports",), "hosts"))

    def credential(self, name: str) -> Credential | None:
        value: Credential | None = self._read(name, ("credential",), "credential")
        return value


class KeyValues(TypedKeys):
    """Typed reads over a plain mapping of validated values (e.g. one section's backup keys)."""

    def __init__(self, tables: Sequence[Mapping[str, Key]], values: Mapping[str, Any]) -> None:
        self._keys: dict[str, Key] = {}
        for table in tables:
            self._keys.update(table)
        self._values = values

    def key_definition(self, name: str) -> Key:
        if name not in self._keys:
            raise KeyError(f"{name}: no key table declares this key")
        return self._keys[name]

    def raw_value(self, name: str) -> Any:
        return self._values.get(name)
