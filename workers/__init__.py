"""The media worker process: one per source. It owns its source and reports its state."""
