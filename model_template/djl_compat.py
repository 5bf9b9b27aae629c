"""A stand-in for DJL Serving's ``djl_python`` Input/Output, used when the real one is absent.

Inside an AWS DJL container ``model.py`` imports ``djl_python``; everywhere else
(``djl-operator-kit serve``, the tests) it imports this module instead, so the same
handler runs in both places. Method names and semantics follow
``djl_python/inputs.py`` and ``outputs.py``: properties are a plain dict, content
is an ordered list of (key, bytes) pairs, and a batch is one Input whose
properties and content keys carry a ``batch_NNN.`` prefix plus a ``batch_size``
property.

This file ships inside every model artifact next to ``model.py``: standard
library only.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["Input", "Output", "PairList"]


class PairList:
    """Ordered (key, value) pairs; keys may repeat or be None, as in DJL."""

    def __init__(self) -> None:
        self._keys: list[str | None] = []
        self._values: list[Any] = []

    def add(self, key: str | None = None, value: Any = None) -> None:
        self._keys.append(key)
        self._values.append(value)

    def get(self, key: str) -> Any:
        for k, v in zip(self._keys, self._values, strict=True):
            if k == key:
                return v
        return None

    def get_keys(self) -> list[str | None]:
        return list(self._keys)

    def get_values(self) -> list[Any]:
        return list(self._values)

    def key_at(self, index: int) -> str | None:
        return self._keys[index]

    def value_at(self, index: int) -> Any:
        return self._values[index]

    def size(self) -> int:
        return len(self._keys)

    def is_empty(self) -> bool:
        return not self._keys


def _batch_index_and_key(prefixed: str) -> tuple[int, str]:
    """``batch_007.data`` -> (7, "data"). DJL fixes the index at three digits and
    skips the separator after it (``.`` from the Java side, ``_`` in old docs)."""
    return int(prefixed[6:9]), prefixed[10:]


class Input:
    """One request (or one batch of requests) as DJL hands it to ``handle``."""

    def __init__(self) -> None:
        self.function_name: str | None = None
        self.properties: dict[str, str] = {}
        self.content = PairList()

    def __str__(self) -> str:
        return f"properties: {self.properties}, content keys: {self.content.get_keys()}"

    # -- batching ---------------------------------------------------------
    def is_batch(self) -> bool:
        return "batch_size" in self.properties

    def get_batch_size(self) -> int:
        return int(self.properties.get("batch_size", "1"))

    def get_batches(self) -> list[Input]:
        """Split a batched Input into one Input per request (itself when not a batch)."""
        if not self.is_batch():
            return [self]
        items = [Input() for _ in range(self.get_batch_size())]
        for key, value in self.properties.items():
            if key.startswith("batch_") and key != "batch_size":
                index, name = _batch_index_and_key(key)
                items[index].properties[name] = value
        for i in range(self.content.size()):
            index, name = _batch_index_and_key(str(self.content.key_at(i)))
            items[index].content.add(name, self.content.value_at(i))
        return items

    # -- properties -------------------------------------------------------
    def get_function_name(self) -> str | None:
        return self.function_name

    def get_properties(self) -> dict[str, str]:
        return self.properties

    def get_property(self, key: str) -> str | None:
        """Case-insensitive, like HTTP header names."""
        wanted = key.lower()
        return next((v for k, v in self.properties.items() if k.lower() == wanted), None)

    # -- content ----------------------------------------------------------
    def get_content(self) -> PairList:
        return self.content

    def contains_key(self, key: str) -> bool:
        return self.content.get(key) is not None

    def is_empty(self) -> bool:
        return self.content.is_empty()

    def get_as_bytes(self, key: str | None = None) -> bytes | bytearray | None:
        """The value under ``key``; without one, ``data`` or else the first item."""
        if self.content.is_empty():
            return None
        if key:
            value = self.content.get(key)
            if value is None:
                raise KeyError(f"requested data for key:{key} is not found!")
            return value
        value = self.content.get("data")
        return value if value is not None else self.content.value_at(0)

    def get_as_string(self, key: str | None = None) -> str:
        data = self.get_as_bytes(key=key)
        if data is None:
            raise ValueError("input has no content")
        return bytes(data).decode("utf-8")

    def get_as_json(self, key: str | None = None) -> Any:
        return json.loads(self.get_as_string(key=key))

    def get_data(self, key: str | None = None) -> Any:
        """Decode by the ``content-type`` property, as DJL does for the types we know."""
        content_type = self.get_property("content-type")
        if content_type is not None and content_type.startswith("application/json"):
            return self.get_as_json(key)
        if content_type is not None and content_type.startswith("text/"):
            return self.get_as_string(key)
        if self.content.is_empty():
            return None
        return self.get_as_bytes(key=key)


class _JSONEncoder(json.JSONEncoder):
    """Lets handlers return numpy scalars/arrays, as DJL's encoder does."""

    def default(self, o: Any) -> Any:
        tolist = getattr(o, "tolist", None)
        if callable(tolist):
            return tolist()
        item = getattr(o, "item", None)
        if callable(item):
            return item()
        return super().default(o)


def _encode_json(value: Any) -> bytearray:
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, cls=_JSONEncoder, separators=(",", ":"))
    return bytearray(text.encode("utf-8"))


class Output:
    """What ``handle`` returns: a status, properties (headers) and content."""

    def __init__(self, code: int = 200, message: str = "OK") -> None:
        self.code = code
        self.message = message
        self.properties: dict[str, str] = {}
        self.content = PairList()

    def __str__(self) -> str:
        return json.dumps(
            {
                "code": self.code,
                "message": self.message,
                "properties": self.properties,
                "content": self.content.get_keys(),
            }
        )

    def set_code(self, code: int) -> Output:
        self.code = code
        return self

    def set_message(self, message: str) -> Output:
        self.message = message
        return self

    def error(self, error: str, code: int = 424, message: str = "prediction failure") -> Output:
        """Mark the output failed with a JSON body ``{"code", "message", "error"}``."""
        self.code = code
        self.message = message
        self.add_property("content-type", "application/json")
        self.add_as_json({"code": code, "message": message, "error": error})
        return self

    def add_property(self, key: str, val: str) -> Output:
        self.properties[key] = val
        return self

    def add(self, value: Any, key: str | None = None, batch_index: int | None = None) -> Output:
        """str is UTF-8 encoded, bytes kept as they are, anything else sent as JSON."""
        if key is not None and not isinstance(key, str):
            key = str(key)
        if batch_index is not None:
            key = f"batch_{batch_index}.{key or ''}"
        if isinstance(value, str):
            self.content.add(key, bytearray(value.encode("utf-8")))
        elif isinstance(value, bytes | bytearray):
            self.content.add(key, bytearray(value))
        else:
            self.content.add(key, _encode_json(value))
        return self

    def add_as_json(self, val: Any, key: str | None = None, batch_index: int | None = None) -> Output:
        return self.add(_encode_json(val), key=key, batch_index=batch_index)
