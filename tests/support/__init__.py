"""Helpers shared by the process-level tests: a real icey-server, a real RTSP camera, media files."""
