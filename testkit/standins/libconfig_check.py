"""Parse a file with the real libconfig C library (the parser ProxySQL uses), via ctypes.

Not a stand-in: this is the actual parser, loaded from the libconfig9 Debian package.
"""

from __future__ import annotations

import ctypes
import ctypes.util


def load_libconfig() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("config") or "libconfig.so.9"
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


class LibConfig:
    """Parsed text; ``lookup_int``/``lookup_string`` read settings by libconfig path."""

    def __init__(self, lib: ctypes.CDLL, text: str) -> None:
        self.lib = lib
        self.buf = ctypes.create_string_buffer(512)       # larger than config_t
        lib.config_init(self.buf)
        if lib.config_read_string(self.buf, text.encode()) != 1:
            # config_t: error_text at offset 32, error_line at 52 (libconfig 1.5, x86_64)
            err = ctypes.cast(ctypes.c_void_p.from_buffer(self.buf, 32).value or 0, ctypes.c_char_p).value
            line = ctypes.c_int.from_buffer(self.buf, 52).value
            lib.config_destroy(self.buf)
            raise ValueError(f"libconfig: line {line}: {(err or b'?').decode()}")

    def lookup_int(self, path: str) -> int:
        out = ctypes.c_int()
        if self.lib.config_lookup_int(self.buf, path.encode(), ctypes.byref(out)) != 1:
            raise KeyError(path)
        return out.value

    def lookup_string(self, path: str) -> str:
        out = ctypes.c_char_p()
        if self.lib.config_lookup_string(self.buf, path.encode(), ctypes.byref(out)) != 1:
            raise KeyError(path)
        return (out.value or b"").decode()

    def close(self) -> None:
        self.lib.config_destroy(self.buf)
