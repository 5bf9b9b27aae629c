"""serving.properties as ``java.util.Properties`` writes and reads it.

DJL Serving loads serving.properties with ``java.util.Properties.load``; every
key and value the operator writes goes through :func:`dumps`, and the local
server reads artifacts with :func:`loads`, a line-for-line model of
``load``: natural lines end at ``\\n``, ``\\r`` or ``\\r\\n`` only; leading
space, tab and form feed are skipped; ``#``/``!`` start a comment only as the
first character of a logical line; an odd run of backslashes before a line
terminator continues the line; a key ends at the first unescaped ``=``, ``:``
or white space; ``\\uXXXX``, ``\\t``, ``\\n``, ``\\r``, ``\\f`` are decoded and any
other escaped character stands for itself.

The writer emits pure ASCII: every character outside printable ASCII becomes
``\\uXXXX`` (UTF-16 units), so the file reads the same as Latin-1 (``load(InputStream)``)
and as UTF-8 (``load(Reader)``), and no character can end a line early.
"""

from __future__ import annotations

from collections.abc import Iterable

# java.util.Properties' white space (line terminators aside).
_WHITESPACE = " \t\f"
# Characters the writer always escapes with a backslash: they end a key, start a
# comment or begin an escape. Escaping them in values too costs nothing and keeps
# a value's first character from ever being read as a separator.
_SPECIAL = "\\=:#!"
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f"}
_DECODED = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


class PropertiesSyntaxError(ValueError):
    """The text is not something ``java.util.Properties.load`` accepts (a malformed ``\\u`` escape)."""


def _escape(text: str, *, is_key: bool) -> str:
    out: list[str] = []
    for i, ch in enumerate(text):
        if ch in _SPECIAL:
            out.append("\\" + ch)
        elif ch in _NAMED:
            out.append(_NAMED[ch])
        elif ch == " ":
            # Inside a value a space is literal; at its start load() would skip it.
            out.append("\\ " if is_key or i == 0 else " ")
        elif " " < ch <= "~":
            out.append(ch)
        else:  # C0 controls, DEL and everything non-ASCII (U+0085, U+2028, U+2029 included)
            units = ch.encode("utf-16-be", "surrogatepass")
            out.extend(f"\\u{int.from_bytes(units[j : j + 2], 'big'):04x}" for j in range(0, len(units), 2))
    return "".join(out)


def escape_key(key: str) -> str:
    return _escape(key, is_key=True)


def escape_value(value: str) -> str:
    return _escape(value, is_key=False)


def dumps(items: Iterable[tuple[str, str]], comment: str | None = None) -> str:
    """``key=value`` lines in the given order, every key and value escaped; ASCII only."""
    lines = []
    if comment is not None:
        lines.append("# " + escape_value(comment).replace("\\ ", " "))
    lines += [f"{escape_key(k)}={escape_value(v)}" for k, v in items]
    return "\n".join(lines) + "\n"


def _logical_lines(text: str) -> Iterable[str]:
    """``Properties.LineReader.readLine``: logical lines, comments and blank lines dropped."""
    i, n = 0, len(text)
    while i < n:
        # Start of a logical line: skip white space and empty natural lines.
        while i < n and (text[i] in _WHITESPACE or text[i] in "\r\n"):
            i += 1
        if i >= n:
            return
        if text[i] in "#!":
            while i < n and text[i] not in "\r\n":
                i += 1
            continue
        buf: list[str] = []
        backslashes = 0  # length of the run of backslashes just read
        while True:
            if i >= n:
                if backslashes % 2:
                    buf.pop()  # a lone trailing backslash at end of input is dropped
                yield "".join(buf)
                return
            ch = text[i]
            i += 1
            if ch not in "\r\n":
                buf.append(ch)
                backslashes = backslashes + 1 if ch == "\\" else 0
                continue
            if backslashes % 2 == 0:
                yield "".join(buf)
                break
            # An escaped line terminator: drop the backslash and the terminator
            # (\r\n counts as one), then the next line's leading white space.
            buf.pop()
            backslashes = 0
            if ch == "\r" and i < n and text[i] == "\n":
                i += 1
            while i < n and text[i] in _WHITESPACE:
                i += 1


def _unescape(raw: str) -> str:
    """``Properties.loadConvert``."""
    out: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        ch = raw[i]
        i += 1
        if ch != "\\" or i >= n:
            out.append(ch)
            continue
        ch = raw[i]
        i += 1
        if ch == "u":
            digits = raw[i : i + 4]
            if len(digits) < 4 or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise PropertiesSyntaxError(f"malformed \\uxxxx encoding: \\u{digits}")
            out.append(chr(int(digits, 16)))
            i += 4
        else:
            out.append(_DECODED.get(ch, ch))
    # Java strings are UTF-16: a surrogate pair written as two escapes is one character.
    return "".join(out).encode("utf-16-be", "surrogatepass").decode("utf-16-be", "surrogatepass")


def _split(line: str) -> tuple[str, str]:
    """``Properties.load0``: the raw key and value of one logical line."""
    key_end, value_start, has_separator, backslash = len(line), len(line), False, False
    for i, ch in enumerate(line):
        if not backslash and ch in "=:":
            key_end, value_start, has_separator = i, i + 1, True
            break
        if not backslash and ch in _WHITESPACE:
            key_end, value_start = i, i + 1
            break
        backslash = not backslash if ch == "\\" else False
    while value_start < len(line):
        ch = line[value_start]
        if ch not in _WHITESPACE:
            if has_separator or ch not in "=:":
                break
            has_separator = True
        value_start += 1
    return line[:key_end], line[value_start:]


def loads_items(text: str) -> list[tuple[str, str]]:
    """Every key/value pair in file order (a later duplicate wins in :func:`loads`)."""
    items = []
    for line in _logical_lines(text):
        key, value = _split(line)
        items.append((_unescape(key), _unescape(value)))
    return items


def loads(text: str) -> dict[str, str]:
    """What ``java.util.Properties.load`` reads from ``text``."""
    return dict(loads_items(text))
