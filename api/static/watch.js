// Play one source over WHEP: offer (recvonly video + audio) -> POST /api/sources/<id>/whep -> answer.
// DELETE on the session's Location ends it (the Stop button, and when the page goes away).
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const video = $('video'), stateEl = $('state'), errorEl = $('error'), stopButton = $('stop'), soundButton = $('sound');
  const sourceId = decodeURIComponent(location.pathname.replace(/^\/watch\//, ''));
  let pc = null;          // the RTCPeerConnection
  let resource = null;    // the session's URL (Location of the 201), until it is deleted
  let state = 'starting'; // starting | connecting | connected | playing | stalled | disconnected | stopped | error
  let last = null;        // {frames, at} of the previous stats sample, for the frame rate

  function setState(s) {
    state = s;
    stateEl.textContent = s;
  }

  function finished() {
    return state === 'stopped' || state === 'error';
  }

  // Ends the session: DELETE it (keepalive when the page is going away), close the peer.
  function hangUp(keepalive) {
    const url = resource;
    resource = null;
    stopButton.disabled = true;
    const req = url ? Icey.api(url, {method: 'DELETE', keepalive: !!keepalive}) : null;
    if (pc) pc.close();
    return req;
  }

  function fail(message) {
    setState('error');
    errorEl.textContent = message;
    const req = hangUp(false);
    if (req) req.catch(() => {});
  }

  async function stop() {
    setState('stopped');
    const req = hangUp(false);
    video.srcObject = null;
    if (!req) return;
    try {
      const resp = await req;
      if (!resp.ok && resp.status !== 404) errorEl.textContent = 'Stop: ' + await Icey.describe(resp);
    } catch (e) {
      errorEl.textContent = 'Stop: ' + e.message;
    }
  }

  function gatheringDone(maxMs) {
    return new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      const timer = setTimeout(resolve, maxMs);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(); }
      });
    });
  }

  async function start() {
    document.title = 'icey · ' + sourceId;
    $('title').textContent = sourceId;
    $('back').href = Icey.link('/');
    let iceServers = [];
    try {
      iceServers = (await Icey.getJSON('/api/config')).iceServers || [];
    } catch (e) {  // only STUN/TURN come from there; the WHEP answer below is what decides
      console.warn('no ICE servers from /api/config:', e.message);
    }
    pc = new RTCPeerConnection({iceServers});
    pc.addTransceiver('video', {direction: 'recvonly'});
    pc.addTransceiver('audio', {direction: 'recvonly'});
    const stream = new MediaStream();
    pc.ontrack = (e) => { stream.addTrack(e.track); video.srcObject = stream; };
    pc.onconnectionstatechange = () => {
      if (finished()) return;
      const s = pc.connectionState;
      if (s === 'connected') setState(video.readyState >= 2 ? 'playing' : 'connected');
      else if (s === 'disconnected') setState('disconnected');
      else if (s === 'failed') fail('The connection failed: no network path to the server (ICE/DTLS).');
    };
    video.onplaying = () => { if (!finished() && pc.connectionState === 'connected') setState('playing'); };

    await pc.setLocalDescription(await pc.createOffer());
    await gatheringDone(2000);  // the server does not trickle: send every candidate in the offer
    setState('connecting');
    const resp = await Icey.api('/api/sources/' + encodeURIComponent(sourceId) + '/whep',
      {method: 'POST', headers: {'Content-Type': 'application/sdp'}, body: pc.localDescription.sdp});
    if (!resp.ok) throw new Error('WHEP ' + await Icey.describe(resp));
    const where = resp.headers.get('Location');
    resource = where ? new URL(where, location.href).href : null;
    if (finished()) return hangUp(false);  // stopped while the offer was in flight
    await pc.setRemoteDescription({type: 'answer', sdp: await resp.text()});
    stopButton.disabled = false;
  }

  async function readStats() {
    const out = {};
    if (!pc || pc.signalingState === 'closed') return out;
    const report = await pc.getStats();
    report.forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') {
        out.framesDecoded = r.framesDecoded || 0;
        out.bytesReceived = r.bytesReceived || 0;
        const codec = report.get(r.codecId);
        if (codec) out.codec = codec.mimeType.replace(/^video\//, '');
      } else if (r.type === 'transport' && r.selectedCandidatePairId) {
        const pair = report.get(r.selectedCandidatePairId);
        const local = pair && report.get(pair.localCandidateId), remote = pair && report.get(pair.remoteCandidateId);
        if (local && remote) out.pair = local.address + ':' + local.port + ' -> ' + remote.address + ':' + remote.port;
      }
    });
    return out;
  }

  async function refresh() {
    if (finished()) return;
    const s = await readStats();
    if (video.videoWidth) $('resolution').textContent = video.videoWidth + '×' + video.videoHeight;
    if (s.codec) $('codec').textContent = s.codec;
    if (s.framesDecoded === undefined) return;
    const now = performance.now();
    if (last) {
      const fps = (s.framesDecoded - last.frames) * 1000 / (now - last.at);
      $('fps').textContent = fps.toFixed(1);
      if (state === 'playing' && fps === 0) setState('stalled');
      else if (state === 'stalled' && fps > 0) setState('playing');
    }
    last = {frames: s.framesDecoded, at: now};
  }

  // Test hook (and handy in the console): what the page is showing right now.
  window.probe = async () => {
    const s = await readStats().catch(() => ({}));
    return {state, currentTime: video.currentTime, videoWidth: video.videoWidth, videoHeight: video.videoHeight,
            framesDecoded: s.framesDecoded || 0, bytesReceived: s.bytesReceived || 0, codec: s.codec || null,
            pair: s.pair || null, error: errorEl.textContent || null};
  };

  stopButton.onclick = stop;
  soundButton.onclick = () => {
    video.muted = !video.muted;
    soundButton.textContent = video.muted ? 'Unmute' : 'Mute';
  };
  window.addEventListener('pagehide', () => {
    if (finished()) return;
    setState('stopped');
    hangUp(true);
  });
  setInterval(() => refresh().catch(() => {}), 1000);
  start().catch((e) => fail(e.message || String(e)));
})();
