"""Vision and speech once per source: the shared decoder, motion, voice, snapshots and clips."""
