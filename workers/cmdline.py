"""Rewrite what /proc/<pid>/cmdline shows for this process (ps, pgrep, top), in place.

A worker forked from the template would otherwise show the template's command line. The kernel
reads cmdline from the process's own argument area (`arg_start`..`arg_end` in /proc/self/stat);
Python copied its arguments at startup and never reads that memory again, so it can be
overwritten. It cannot grow: the template is started with room to spare (see
supervisor/zygote.py), and the last byte stays NUL so the kernel reads the area as argv."""

from __future__ import annotations

import ctypes
import os

# Fields of /proc/self/stat after "(comm)": arg_start is field 48, arg_end field 49 (1-based).
_ARG_START, _ARG_END = 45, 46


def set_cmdline(argv: list[str]) -> bool:
    """Show `argv` as this process's command line; False (nothing changed) when it does not fit."""
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    start, end = int(fields[_ARG_START]), int(fields[_ARG_END])
    data = b"\0".join(os.fsencode(arg) for arg in argv) + b"\0"
    if len(data) > end - start:
        return False
    ctypes.memmove(start, data.ljust(end - start, b"\0"), end - start)
    return True
