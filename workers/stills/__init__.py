"""Snapshots on demand: the latest picture of a source as JPEG, decoded only when asked."""
