"""Media CPU benchmark: server CPU per WebRTC viewer, fixed CPU per source, late-joiner first frame
(a benchmark that prints figures, not a test).

One 720p30 ~2 Mbit/s H.264 Baseline MPEG-TS (GOP 60, no B-frames) is served by three systems in the
same run, one after the other:

  * icey:     the real `icey-server --source cam=<file>`; the source's worker process (H.264
              passthrough, packetized once per source) is what is measured, the API process apart;
  * reencode: a small aiortc server (reencode_server.py, hidden `--serve-reencode`):
              `MediaPlayer(decode=True)` + `MediaRelay`, so one libx264 encoder per viewer (what a naive
              aiortc server does);
  * janus:    Janus 1.1.2's streaming plugin (Debian package) fed the same file as RTP by
              `ffmpeg -c copy`, with everything (Janus, ffmpeg, Janus viewers) inside a private network
              namespace made by janus.py, because Janus never offers 127.0.0.1.

Viewers are aiortc peer connections in separate client processes (viewers.py, hidden `--client`),
recvonly H.264, that never decode: aiortc's receiver decoder thread is replaced by one that only counts
the complete encoded frames its jitter buffer hands over. Server CPU is utime+stime of the measured
processes from /proc/<pid>/stat (all threads) over a fixed window.

Run from the repository root as root (for the namespace):  .venv/bin/python bench/media_cpu
(see bench/README.md). Each helper program is this package re-run with its hidden flag (driver.py).
"""
