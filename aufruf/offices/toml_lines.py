"""Where a field of a TOML document stands: the line of `locations[2].hours[0].windows`.

tomllib parses without positions; this reads the text once more, just far enough to know at
which line each table, array entry and key begins, so errors can name their line."""

from __future__ import annotations

import re
import tomllib
from bisect import bisect_left

FieldPath = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR = re.compile(r"[^,\]}\n#]*")


class TomlLines:
    """The line on which each table, key and array element of a (valid) TOML text starts."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.newlines = [i for i, char in enumerate(text) if char == "\n"]
        self.lines: dict[FieldPath, int] = {}
        self.arrays: dict[FieldPath, int] = {}  # array of tables -> entries seen so far
        try:
            self._document()
        except (IndexError, AttributeError, ValueError):
            pass  # keep what was found: a line near the problem beats none

    def line_of(self, path: FieldPath) -> int:
        for end in range(len(path), 0, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return 1

    def _line(self) -> int:
        return bisect_left(self.newlines, self.pos) + 1

    def _document(self) -> None:
        table: FieldPath = ()
        while self._skip(newlines=True):
            line = self._line()
            if self.text.startswith("[[", self.pos):
                self.pos += 2
                keys = self._keys()
                self.pos += 2
                array = (*self._resolve(keys[:-1]), keys[-1])
                count = self.arrays.get(array, 0)
                self.arrays[array] = count + 1
                table = (*array, count)
                self.lines[table] = line
            elif self.text.startswith("[", self.pos):
                self.pos += 1
                table = self._resolve(self._keys())
                self.pos += 1
                self.lines.setdefault(table, line)
            else:
                self._pair(table)

    def _resolve(self, keys: list[str]) -> FieldPath:
        path: FieldPath = ()
        for key in keys:
            path = (*path, key)
            if path in self.arrays:
                path = (*path, self.arrays[path] - 1)
        return path

    def _skip(self, newlines: bool) -> bool:
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char in " \t\r" or (newlines and char == "\n"):
                self.pos += 1
            elif char == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            else:
                return True
        return False

    def _pair(self, table: FieldPath) -> None:
        line = self._line()
        path = table
        for key in self._keys():
            path = (*path, key)
            self.lines.setdefault(path, line)
        self._skip(newlines=False)
        self.pos += 1  # "="
        self._value(path)

    def _keys(self) -> list[str]:
        keys = []
        while True:
            self._skip(newlines=False)
            if self.text[self.pos] in "\"'":
                start = self.pos
                self._string()
                keys.append(tomllib.loads("k = " + self.text[start : self.pos])["k"])
            else:
                found = _BARE_KEY.match(self.text, self.pos)
                assert found is not None
                keys.append(found.group())
                self.pos = found.end()
            self._skip(newlines=False)
            if self.text[self.pos] != ".":
                return keys
            self.pos += 1

    def _value(self, path: FieldPath) -> None:
        self._skip(newlines=False)
        char = self.text[self.pos]
        if char == "[":
            self._array(path)
        elif char == "{":
            self.pos += 1
            while self._skip(newlines=True) and self.text[self.pos] != "}":
                self._pair(path)
                self._skip(newlines=True)
                if self.text[self.pos] == ",":
                    self.pos += 1
            self.pos += 1
        elif char in "\"'":
            self._string()
        else:
            found = _SCALAR.match(self.text, self.pos)
            assert found is not None
            self.pos = found.end()

    def _array(self, path: FieldPath) -> None:
        self.pos += 1
        index = 0
        while self._skip(newlines=True) and self.text[self.pos] != "]":
            self.lines.setdefault((*path, index), self._line())
            self._value((*path, index))
            self._skip(newlines=True)
            if self.text[self.pos] == ",":
                self.pos += 1
                index += 1
        self.pos += 1

    def _string(self) -> None:
        text = self.text
        quote = text[self.pos]
        delimiter = quote * 3 if text.startswith(quote * 3, self.pos) else quote
        i = self.pos + len(delimiter)
        while not text.startswith(delimiter, i):
            i += 2 if quote == '"' and text[i] == "\\" else 1
        i += len(delimiter)
        if len(delimiter) == 3:  # up to two quotes of the content may stand before the end
            while i < len(text) and text[i] == quote:
                i += 1
        self.pos = i
