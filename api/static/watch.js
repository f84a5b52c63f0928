// Play one source over WHEP: offer (recvonly video + audio) -> POST /api/sources/<id>/whep -> answer.
// The session itself (POST, Stop, DELETE when the page goes away) is Icey.session() in common.js.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const video = $('video'), errorEl = $('error'), soundButton = $('sound');
  const sourceId = decodeURIComponent(location.pathname.replace(/^\/watch\//, ''));
  // States: starting | connecting | connected | playing | stalled | disconnected | stopped | error
  const session = Icey.session({
    kind: 'whep', sourceId, stateEl: $('state'), errorEl, stopButton: $('stop'), video,
    // connected but no picture yet: 'playing' waits for the first decoded frame (video.onplaying)
    connectedState: () => (video.readyState >= 2 ? 'playing' : 'connected'),
  });
  let pc = null;  // the RTCPeerConnection

  async function start() {
    document.title = 'icey · ' + sourceId;
    $('title').textContent = sourceId;
    pc = session.peer({iceServers: await Icey.iceServers()});
    pc.addTransceiver('video', {direction: 'recvonly'});
    pc.addTransceiver('audio', {direction: 'recvonly'});
    const stream = new MediaStream();
    pc.ontrack = (e) => { stream.addTrack(e.track); video.srcObject = stream; };
    video.onplaying = () => {
      if (!session.finished() && pc.connectionState === 'connected') session.setState('playing');
    };
    await session.negotiate();
  }

  async function readStats() {
    const out = {};
    if (!pc || pc.signalingState === 'closed') return out;
    const report = await pc.getStats();
    report.forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') {
        out.framesDecoded = r.framesDecoded || 0;
        out.bytesReceived = r.bytesReceived || 0;
        out.codec = Icey.codecName(report, r);
      } else if (r.type === 'transport' && r.selectedCandidatePairId) {
        const pair = report.get(r.selectedCandidatePairId);
        const local = pair && report.get(pair.localCandidateId), remote = pair && report.get(pair.remoteCandidateId);
        if (local && remote) out.pair = local.address + ':' + local.port + ' -> ' + remote.address + ':' + remote.port;
      }
    });
    return out;
  }

  const bar = Icey.statsBar({codecEl: $('codec'), fpsEl: $('fps')});

  // The stats line under the video, every second.
  function show(s) {
    if (video.videoWidth) $('resolution').textContent = video.videoWidth + '×' + video.videoHeight;
    const r = bar(s.codec, {frames: s.framesDecoded});
    if (!r) return;
    // a frozen picture on a connection that still looks fine: say so, and recover when frames return
    if (session.state === 'playing' && r.frames === 0) session.setState('stalled');
    else if (session.state === 'stalled' && r.frames > 0) session.setState('playing');
  }

  // Test hook (and handy in the console): what the page is showing right now.
  window.probe = async () => {
    const s = await readStats().catch(() => ({}));
    return {state: session.state, currentTime: video.currentTime, videoWidth: video.videoWidth,
            videoHeight: video.videoHeight, framesDecoded: s.framesDecoded || 0, bytesReceived: s.bytesReceived || 0,
            codec: s.codec || null, pair: s.pair || null, error: errorEl.textContent || null};
  };

  soundButton.onclick = () => {
    video.muted = !video.muted;
    soundButton.textContent = video.muted ? 'Unmute' : 'Mute';
  };
  session.monitor(1000, readStats, show);
  start().catch((e) => session.fail(e.message || String(e)));
})();
