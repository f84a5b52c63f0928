"""The config file watch (watchfiles on the file's directory): one reload per settled change,
none for the service's own write or another file, one for a ConfigMap-style symlink swap."""

from __future__ import annotations

import asyncio
import os

from supervisor.config_watch import ConfigWatch


async def _until(calls: list[int], n: int) -> None:
    for _ in range(100):
        if len(calls) >= n:
            return
        await asyncio.sleep(0.05)


async def test_a_settled_change_reloads_once_and_an_accepted_one_not_at_all(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{}")
    calls: list[int] = []
    watch = ConfigWatch(path, lambda: calls.append(1), settle_ms=200)
    task = asyncio.create_task(watch.run())
    try:
        await asyncio.sleep(0.3)  # the watch is set up
        for n in range(3):  # an editor writing in several steps
            path.write_text("{" + " " * n + "}")
            await asyncio.sleep(0.02)
        await _until(calls, 1)
        await asyncio.sleep(0.5)
        assert calls == [1]
        path.write_text('{"a": 1}')
        watch.accept_current()
        (tmp_path / "other.txt").write_text("not the config")
        await asyncio.sleep(0.8)
        assert calls == [1]
        swapped = tmp_path / "next.json"
        swapped.write_text('{"b": 2}')
        os.replace(swapped, path)  # a rename over it, as an atomic editor does
        await _until(calls, 2)
        assert calls == [1, 1]
    finally:
        watch.stop()
        await asyncio.wait_for(task, 5)


async def test_a_configmap_symlink_swap_is_seen(tmp_path):
    """Kubernetes: config.json -> ..data/config.json, ..data -> ..<version>; an update writes a
    new version directory and renames a new ..data symlink over the old one."""
    (tmp_path / "..v1").mkdir()
    (tmp_path / "..v1" / "config.json").write_text('{"v": 1}')
    os.symlink("..v1", tmp_path / "..data")
    os.symlink("..data/config.json", tmp_path / "config.json")
    calls: list[int] = []
    watch = ConfigWatch(tmp_path / "config.json", lambda: calls.append(1), settle_ms=200)
    task = asyncio.create_task(watch.run())
    try:
        await asyncio.sleep(0.3)
        (tmp_path / "..v2").mkdir()
        (tmp_path / "..v2" / "config.json").write_text('{"v": 2}')
        os.symlink("..v2", tmp_path / "..data_tmp")
        os.replace(tmp_path / "..data_tmp", tmp_path / "..data")
        await _until(calls, 1)
        assert calls == [1]
    finally:
        watch.stop()
        await asyncio.wait_for(task, 5)
