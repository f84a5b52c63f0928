"""protocol.ipc's choice of the runtime dir's parent: short enough for every socket path, writable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from protocol.ipc import MAX_BASE_PATH, RuntimeDirError, choose_runtime_base, runtime_base_candidates

MISSING = "/nonexistent-icey-runtime-base"


def test_candidates_put_the_environment_first_then_fixed_dirs():
    env = {"XDG_RUNTIME_DIR": "/run/user/1000", "TMPDIR": "/very/long/tmp", "TMP": "/run/user/1000"}
    assert runtime_base_candidates(env) == ["/run/user/1000", "/very/long/tmp", "/tmp", "/dev/shm", "/var/tmp"]
    assert runtime_base_candidates({"XDG_RUNTIME_DIR": ""}) == ["/tmp", "/dev/shm", "/var/tmp"]


def test_chooser_skips_long_missing_and_non_directories(tmp_path):
    long_dir = tmp_path / ("x" * MAX_BASE_PATH)
    long_dir.mkdir()
    assert choose_runtime_base([str(long_dir), MISSING, os.devnull, "/tmp"]) == Path("/tmp")


def test_chooser_fails_with_what_it_tried_when_nothing_fits(tmp_path):
    long_dir = tmp_path / ("x" * MAX_BASE_PATH)
    long_dir.mkdir()
    with pytest.raises(RuntimeDirError) as err:
        choose_runtime_base([str(long_dir), MISSING, os.devnull])
    message = str(err.value)
    assert f"tried {long_dir} (path too long), {MISSING} (not a writable directory), /dev/null (not a writable " \
           "directory). Set XDG_RUNTIME_DIR to a short writable directory." in message
    assert f"at most {MAX_BASE_PATH} bytes" in message
