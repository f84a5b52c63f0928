"""Writing a source's own packets to disk: continuous segments, WHIP recordings, retention."""
