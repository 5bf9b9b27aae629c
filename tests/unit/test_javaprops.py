"""serving.properties: the writer round-trips hostile keys and values, and the
local reader reads exactly what java.util.Properties.load reads (checked
against a real JVM when one is installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from djl_operator import javaprops
from djl_operator_kit.serving.artifact import ArtifactError, parse_properties

JAVA_READER = Path(__file__).resolve().parents[1] / "java" / "ReadProperties.java"

HOSTILE_VALUES = [
    "main\noption.trust_remote_code=true\nengine=MPI",
    "a\rengine=MPI",
    "a\r\nengine=MPI",
    "ends with backslash\\",
    "\\",
    "\\\\\\",
    "\\\nengine=MPI",
    "#not a comment",
    "!not a comment",
    "=starts with a separator",
    ":starts with a separator",
    " leading space",
    "\tleading tab",
    "\fleading form feed",
    "trailing space ",
    "nul\x00byte",
    "file separators \x1c\x1d\x1e\x1f",
    "del\x7f",
    "next line\x85engine=MPI",
    "line separator\u2028engine=MPI",
    "paragraph separator\u2029engine=MPI",
    "vertical tab\vengine=MPI",
    "form feed\fengine=MPI",
    "\\u0041 is not an escape here",
    "\\u12",
    "caf\u00e9",
    "astral \U0001f600",
    "a=b:c d",
    "",
    "   ",
    "s3://bucket/a\x0bb",
    "lone surrogate \ud800 stays one",
]
HOSTILE_KEYS = [
    "option.x",
    "key with spaces",
    "key=with=equals",
    "key:with:colons",
    "#hash",
    "!bang",
    " lead",
    "new\nline",
    "tab\tkey",
    "",
    "back\\slash",
    "uni\u2028code",
    "\u00e9",
]


def _assert_round_trip(props: dict[str, str]) -> None:
    text = javaprops.dumps(props.items(), comment="hostile\ncomment")
    assert text.isascii()
    # One natural line per entry (plus the comment): nothing can start a line of its own.
    assert len(text.splitlines()) == len(props) + 1
    assert text.count("\n") == len(props) + 1 and "\r" not in text
    assert javaprops.loads(text) == props


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_hostile_values_round_trip(value: str) -> None:
    _assert_round_trip({"option.x": value, "engine": "Python"})


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_hostile_keys_round_trip(key: str) -> None:
    _assert_round_trip({key: "v", "engine": "Python"})


def test_everything_at_once_round_trips() -> None:
    props = {f"k{i}{key}": value for i, (key, value) in enumerate(zip(HOSTILE_KEYS * 3, HOSTILE_VALUES, strict=False))}
    _assert_round_trip(props)


# What java.util.Properties.load reads from hand-written text (also checked against Java below).
PARSE_CASES = [
    ("engine=Python\noption.model_id=org/m\n", {"engine": "Python", "option.model_id": "org/m"}),
    ("# comment\n! other\n\n  batch_size = 4  \n", {"batch_size": "4  "}),
    ("option.model_id: s3://b/p/\n", {"option.model_id": "s3://b/p/"}),
    ("a=b=c\n", {"a": "b=c"}),
    ("key value with spaces\n", {"key": "value with spaces"}),
    ("key\t\f  =  :value\n", {"key": ":value"}),
    ("just words\n", {"just": "words"}),
    ("lonely\n", {"lonely": ""}),
    ("=no key\n", {"": "no key"}),
    ("a=one\\\n    two\\\n\tthree\n", {"a": "onetwothree"}),
    ("a=even\\\\\nb=next\n", {"a": "even\\", "b": "next"}),
    ("a=odd\\\\\\\nb=joined\n", {"a": "odd\\b=joined"}),
    ("# comment \\\nb=not continued\n", {"b": "not continued"}),
    ("a=x\\\n# not a comment\n", {"a": "x# not a comment"}),
    ("a=x\\\n\nb=y\n", {"a": "x", "b": "y"}),
    ("a=1\rb=2\r\nc=3\n", {"a": "1", "b": "2", "c": "3"}),
    ("a=1\\\r\n  2\n", {"a": "12"}),
    ("a=x\u2028b=y\n", {"a": "x\u2028b=y"}),
    ("a=x\x85b=y\n", {"a": "x\x85b=y"}),
    ("a=x\x0bb=y\n", {"a": "x\x0bb=y"}),
    ("\x0ba=x\n", {"\x0ba": "x"}),
    ("a=x\fb=y\n", {"a": "x\fb=y"}),
    ("\\#key=\\=v\\:\\ \n", {"#key": "=v: "}),
    ("k\\ ey=v\n", {"k ey": "v"}),
    ("a=\\t\\n\\r\\f\\q\\\\\n", {"a": "\t\n\r\fq\\"}),
    ("a=\\u0041\\u00e9\\ud83d\\ude00\n", {"a": "A\u00e9\U0001f600"}),
    ("a=trailing\\", {"a": "trailing"}),
    ("dup=1\ndup=2\n", {"dup": "2"}),
    ("   \n\t\n", {}),
    ("", {}),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_CASES)
def test_loads_reads_like_java(text: str, expected: dict[str, str]) -> None:
    assert javaprops.loads(text) == expected
    assert parse_properties(text) == expected


@pytest.mark.parametrize("text", ["a=\\u12\n", "a=\\uzzzz\n", "\\u00=b\n"])
def test_malformed_unicode_escape_is_an_error(text: str) -> None:
    with pytest.raises(javaprops.PropertiesSyntaxError):
        javaprops.loads(text)
    with pytest.raises(ArtifactError, match=r"serving\.properties"):
        parse_properties(text)


def _java_reads(paths: list[Path]) -> dict[str, dict[str, str] | None]:
    out = subprocess.run(
        ["java", str(JAVA_READER), *map(str, paths)], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    results: dict[str, dict[str, str] | None] = {}
    current = ""
    for line in out.splitlines():
        tag, _, rest = line.partition(" ")
        if tag == "FILE":
            current = rest
            results[current] = {}
        elif tag == "ERROR":
            results[current] = None
        else:
            key_hex, value_hex = rest.split(" ")
            entry = results[current]
            assert entry is not None

            def decode(h: str) -> str:
                units = bytes.fromhex(h)
                return units.decode("utf-16-be", "surrogatepass")

            entry[decode(key_hex)] = decode(value_hex)
    return results


@pytest.mark.skipif(shutil.which("java") is None, reason="no JVM to compare with")
def test_java_reads_what_we_read(tmp_path: Path) -> None:
    texts = [text for text, _ in PARSE_CASES]
    texts += ["a=\\u12\n", "a=\\uzzzz\n"]
    texts += [javaprops.dumps([("option.x", v), ("engine", "Python")]) for v in HOSTILE_VALUES]
    texts += [javaprops.dumps([(k, "v"), ("engine", "Python")]) for k in HOSTILE_KEYS]
    paths = []
    for i, text in enumerate(texts):
        path = tmp_path / f"{i:03d}.properties"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        paths.append(path)
    java = _java_reads(paths)
    assert len(java) == len(texts)
    for path, text in zip(paths, texts, strict=True):
        try:
            ours: dict[str, str] | None = javaprops.loads(text)
        except javaprops.PropertiesSyntaxError:
            ours = None
        assert java[str(path)] == ours, f"{text!r}: Java read {java[str(path)]!r}, we read {ours!r}"
