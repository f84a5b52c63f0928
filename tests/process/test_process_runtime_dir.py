"""Issue 8 item 14: a long $TMPDIR must not push the IPC socket paths past the AF_UNIX limit."""

from __future__ import annotations

from support.processes import cmdline

from protocol.ipc import MAX_SOCKET_PATH


def test_long_tmpdir_still_brings_sources_online(icey, tmp_path):
    long_tmp = tmp_path / ("t" * (150 - len(str(tmp_path)) - 1))
    long_tmp.mkdir()
    assert len(str(long_tmp)) == 150
    server = icey(["--no-turn", "--source", "a=demo://testsrc2?size=160x90&rate=5",
                   "--source", "b=demo://smptebars?size=160x90&rate=5"],
                  env={"TMPDIR": str(long_tmp), "XDG_RUNTIME_DIR": ""})
    server.wait_all_online()
    argv = cmdline(server.children()["worker:b"]).split()
    runtime_dir = argv[argv.index("--runtime-dir") + 1]
    assert not runtime_dir.startswith(str(long_tmp))
    assert len(f"{runtime_dir}/ctl-1.sock") <= MAX_SOCKET_PATH
