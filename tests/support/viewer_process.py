"""A WHEP viewer in its own process, so a test can freeze it (SIGSTOP) or kill it (SIGKILL)
the way a laptop lid closes or a browser tab crashes.

usage: python viewer_process.py BASE_URL SOURCE_ID   (prints "READY <session location>")
"""

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.webrtc_client import wait_frames, watch  # noqa: E402


async def main(base: str, source_id: str) -> None:
    viewer = await watch(base, source_id, audio=False)
    await wait_frames(viewer, 5)
    print("READY", viewer.location, flush=True)
    await asyncio.sleep(120)  # bounded: the test kills it long before


asyncio.run(main(sys.argv[1], sys.argv[2]))
