"""The Janus baseline: Janus's streaming plugin fed the source as RTP by `ffmpeg -c copy`, both (and the Janus
viewers) inside a private network namespace made here, because Janus never offers 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sysconfig
import time
from pathlib import Path

from media_cpu.measurement import Target, count_log_errors, late_joiners, measure_counts
from media_cpu.processes import spawn, stop_proc

NS_PREFIX = "icey-mcpu-"
NS_ADDR = "10.203.0.1"  # the veth address inside the namespace; Janus offers only this
JANUS_HTTP = "http://127.0.0.1:8088/janus"  # inside the namespace
JANUS_RTP_PORT = 5004
JANUS_LIBDIR = f"/usr/lib/{sysconfig.get_config_var('MULTIARCH')}/janus"  # the Debian package's, on any arch
NAMESPACES: list[str] = []


def netns_create(name: str) -> None:
    NAMESPACES.append(name)
    for cmd in (["ip", "netns", "add", name],
                ["ip", "-n", name, "link", "set", "lo", "up"],
                ["ip", "-n", name, "link", "add", "d0", "type", "veth", "peer", "name", "d1"],
                ["ip", "-n", name, "link", "set", "d1", "up"],
                ["ip", "-n", name, "addr", "add", f"{NS_ADDR}/24", "dev", "d0"],
                ["ip", "-n", name, "link", "set", "d0", "up"]):
        subprocess.run(cmd, check=True, capture_output=True)


def netns_delete(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    if name in NAMESPACES:
        NAMESPACES.remove(name)


def delete_namespaces() -> None:
    for name in list(NAMESPACES):
        netns_delete(name)


def remove_stale_namespaces() -> None:
    """Namespaces of earlier runs of this benchmark whose process is gone (a SIGKILLed run)."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(NS_PREFIX):
            pid = name[len(NS_PREFIX):]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                netns_delete(name)


JANUS_JCFG = """general: {{
\tconfigs_folder = "{conf}"
\tplugins_folder = "{lib}/plugins"
\ttransports_folder = "{lib}/transports"
\tevents_folder = "{lib}/events"
\tloggers_folder = "{lib}/loggers"
\tlog_to_stdout = true
\tdebug_level = 4
\tadmin_secret = "janusoverlord"
}}
media: {{
\trtp_port_range = "20000-20999"
\tipv6 = false
}}
nat: {{
\tnice_debug = false
\tignore_mdns = true
\tice_enforce_list = "{prefix}"
}}
plugins: {{
\tdisable = "libjanus_audiobridge.so,libjanus_duktape.so,libjanus_echotest.so,libjanus_lua.so,libjanus_nosip.so,\
libjanus_recordplay.so,libjanus_sip.so,libjanus_textroom.so,libjanus_videocall.so,libjanus_videoroom.so,\
libjanus_voicemail.so"
}}
transports: {{
\tdisable = "libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_rabbitmq.so,libjanus_websockets.so"
}}
events: {{
\tbroadcast = false
}}
loggers: {{
\tdisable = "libjanus_jsonlog.so"
}}
"""


def write_janus_conf(conf: Path) -> None:
    """Streaming plugin and HTTP transport only (every other plugin, transport and logger disabled, so
    they cost nothing), ICE on the namespace's veth address, a mountpoint taking H.264 RTP on
    127.0.0.1:5004 that keeps the last keyframe for new viewers (videobufferkf)."""
    conf.mkdir(parents=True, exist_ok=True)
    main = JANUS_JCFG.format(conf=conf, lib=JANUS_LIBDIR, prefix=NS_ADDR.rsplit(".", 1)[0] + ".")
    (conf / "janus.jcfg").write_text(main)
    (conf / "janus.transport.http.jcfg").write_text(
        'general: {\n\tjson = "indented"\n\tbase_path = "/janus"\n\thttp = true\n\tport = 8088\n'
        '\tip = "127.0.0.1"\n\thttps = false\n}\nadmin: {\n\tadmin_http = false\n}\n')
    (conf / "janus.plugin.streaming.jcfg").write_text(
        f'general: {{\n}}\nh264-cam: {{\n\ttype = "rtp"\n\tid = 1\n\tdescription = "H.264 bench source"\n'
        f'\taudio = false\n\tvideo = true\n\tvideoport = {JANUS_RTP_PORT}\n\tvideoiface = "127.0.0.1"\n'
        f'\tvideopt = 96\n\tvideocodec = "h264"\n\tvideofmtp = "profile-level-id=42e01f;packetization-mode=1"\n'
        f'\tvideobufferkf = true\n}}\n')


def run_janus(args, src: Path, tmp: Path) -> dict:
    if shutil.which("janus") is None:
        raise RuntimeError("janus not installed (apt-get install -y janus)")
    ns = f"{NS_PREFIX}{os.getpid()}"
    prefix = ["ip", "netns", "exec", ns]
    netns_create(ns)
    janus = feeder = None
    try:
        conf = tmp / "janus_conf"
        write_janus_conf(conf)
        janus = spawn([*prefix, "janus", "-F", str(conf)], tmp / "janus.log", cwd=tmp)
        # No `-bsf:v h264_mp4toannexb` (the usual recipe): the TS is Annex B already, and with -stream_loop
        # ffmpeg 5.1 stops sending at the first loop ("A non-NULL packet sent after an EOF").
        feeder = spawn([*prefix, "ffmpeg", "-nostdin", "-v", "error", "-re", "-stream_loop", "-1", "-i", str(src),
                        "-an", "-c:v", "copy", "-f", "rtp", "-payload_type", "96",
                        f"rtp://127.0.0.1:{JANUS_RTP_PORT}"], tmp / "janus-ffmpeg.log", cwd=tmp)
        time.sleep(2.0)  # `ip netns exec` execs the command, so these pids are Janus's and ffmpeg's own
        for proc, what in ((janus, "janus"), (feeder, "ffmpeg")):
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with code {proc.returncode} (log in {tmp})")
        target = Target("janus", {"janus": janus.pid, "ffmpeg feeder": feeder.pid},
                        {"system": "janus", "url": JANUS_HTTP, "host": NS_ADDR}, prefix, lambda: time.sleep(1.0))
        rows = measure_counts(target, [0, *args.counts], args, tmp)
        late = late_joiners(target, args, tmp) if args.late else None
        return {"rows": rows, "late": late, "headline": "janus", "log_errors": count_log_errors(tmp / "janus.log")}
    finally:
        stop_proc(feeder, timeout=5.0)
        stop_proc(janus, sig=signal.SIGINT, timeout=10.0)
        netns_delete(ns)
        print(f"  [janus] stopped; namespace {ns} deleted", flush=True)
