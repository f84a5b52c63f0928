"""The config file watch: one reload per settled change, none for the service's own write."""

from __future__ import annotations

import asyncio
import os

from supervisor.config_watch import ConfigWatch


async def test_a_settled_change_reloads_once_and_an_accepted_one_not_at_all(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{}")
    calls: list[int] = []
    watch = ConfigWatch(path, lambda: calls.append(1), interval=0.05)
    task = asyncio.create_task(watch.run())
    try:
        for n in range(3):  # an editor writing in several steps
            path.write_text("{" + " " * n + "}")
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        assert calls == [1]
        path.write_text('{"a": 1}')
        watch.accept_current()
        await asyncio.sleep(0.3)
        assert calls == [1]
        swapped = tmp_path / "next.json"
        swapped.write_text('{"b": 2}')
        os.replace(swapped, path)  # a rename over it, as a ConfigMap update does
        await asyncio.sleep(0.3)
        assert calls == [1, 1]
    finally:
        task.cancel()
