// Publish this browser's camera and microphone to one source over WHIP: getUserMedia -> offer (sendonly
// video, H.264 first, + audio) -> POST /api/sources/<id>/whip -> answer. DELETE on the session's Location
// ends it (the Stop button, and when the page goes away). Only record and relay sources take a publisher.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const video = $('video'), stateEl = $('state'), errorEl = $('error'), stopButton = $('stop');
  const sourceId = decodeURIComponent(location.pathname.replace(/^\/publish\//, ''));
  let pc = null;          // the RTCPeerConnection
  let media = null;       // the camera + microphone MediaStream
  let resource = null;    // the session's URL (Location of the 201), until it is deleted
  let state = 'starting'; // starting | connecting | publishing | disconnected | stopped | error
  let last = null;        // {frames, bytes, at} of the previous stats sample, for the rates

  function setState(s) {
    state = s;
    stateEl.textContent = s;
  }

  function finished() {
    return state === 'stopped' || state === 'error';
  }

  // Ends the session: DELETE it (keepalive when the page is going away), close the peer, release the camera.
  function hangUp(keepalive) {
    const url = resource;
    resource = null;
    stopButton.disabled = true;
    const req = url ? Icey.api(url, {method: 'DELETE', keepalive: !!keepalive}) : null;
    if (pc) pc.close();
    if (media) media.getTracks().forEach((t) => t.stop());
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

  const isH264 = (c) => c.mimeType.toLowerCase() === 'video/h264';

  // The browser's video codecs with H.264 first (packetization-mode 1 before 0): the server records and
  // relays the publisher's H.264 as it is, so it answers nothing else. Null when there is no H.264.
  function h264First(codecs) {
    const h264 = codecs.filter(isH264);
    if (!h264.length) return null;
    const mode1 = (c) => /packetization-mode=1/.test(c.sdpFmtpLine || '') ? 0 : 1;
    h264.sort((a, b) => mode1(a) - mode1(b));
    return h264.concat(codecs.filter((c) => !isH264(c)));
  }

  // `sending`: h264First() of the sender's capabilities.
  function preferH264(transceiver, sending) {
    if (!transceiver.setCodecPreferences) return;  // the offer still lists H.264; the answer picks it
    const receiving = RTCRtpReceiver.getCapabilities && RTCRtpReceiver.getCapabilities('video');
    const preferred = receiving && h264First(receiving.codecs);
    try {  // the current spec takes the receiver's codecs; older browsers took the sender's
      transceiver.setCodecPreferences(preferred || sending);
    } catch (e) {
      transceiver.setCodecPreferences(sending);
    }
  }

  async function start() {
    document.title = 'icey · publish ' + sourceId;
    $('title').textContent = 'publish ' + sourceId;
    $('back').href = Icey.link('/');
    if (!window.RTCPeerConnection) throw new Error('This browser has no WebRTC (RTCPeerConnection).');
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new Error('The camera is only available to pages served over HTTPS or from localhost.');
    }
    const sending = h264First((RTCRtpSender.getCapabilities('video') || {codecs: []}).codecs);
    if (!sending) throw new Error('This browser cannot send H.264, the only video codec the server takes.');
    let iceServers = [];
    try {
      iceServers = (await Icey.getJSON('/api/config')).iceServers || [];
    } catch (e) {  // only STUN/TURN come from there; the WHIP answer below is what decides
      console.warn('no ICE servers from /api/config:', e.message);
    }
    try {
      media = await navigator.mediaDevices.getUserMedia({video: {width: 1280, height: 720}, audio: true});
    } catch (e) {
      throw new Error('No camera/microphone: ' + (e.name ? e.name + ': ' : '') + e.message);
    }
    if (finished()) return hangUp(false);  // stopped while the browser asked for the camera
    video.srcObject = media;
    pc = new RTCPeerConnection({iceServers});
    const videoTrack = media.getVideoTracks()[0], audioTrack = media.getAudioTracks()[0];
    if (!videoTrack) throw new Error('The camera gave no video track.');
    preferH264(pc.addTransceiver(videoTrack, {direction: 'sendonly', streams: [media]}), sending);
    if (audioTrack) pc.addTransceiver(audioTrack, {direction: 'sendonly', streams: [media]});
    pc.onconnectionstatechange = () => {
      if (finished()) return;
      const s = pc.connectionState;
      if (s === 'connected') setState('publishing');
      else if (s === 'disconnected') setState('disconnected');
      else if (s === 'failed') fail('The connection failed: no network path to the server (ICE/DTLS).');
    };

    await pc.setLocalDescription(await pc.createOffer());
    await gatheringDone(2000);  // the server does not trickle: send every candidate in the offer
    if (finished()) return hangUp(false);
    setState('connecting');
    const resp = await Icey.api('/api/sources/' + encodeURIComponent(sourceId) + '/whip',
      {method: 'POST', headers: {'Content-Type': 'application/sdp'}, body: pc.localDescription.sdp});
    if (!resp.ok) throw new Error('WHIP ' + await Icey.describe(resp));
    const where = resp.headers.get('Location');
    resource = where ? new URL(where, location.href).href : null;
    if (finished()) return hangUp(false);  // stopped while the offer was in flight
    await pc.setRemoteDescription({type: 'answer', sdp: await resp.text()});
    stopButton.disabled = false;
  }

  async function readStats() {
    const out = {bytesSent: 0};
    if (!pc || pc.signalingState === 'closed') return out;
    const report = await pc.getStats();
    report.forEach((r) => {
      if (r.type !== 'outbound-rtp') return;
      out.bytesSent += r.bytesSent || 0;
      if (r.kind !== 'video') return;
      out.framesEncoded = r.framesEncoded || 0;
      if (r.frameWidth) { out.width = r.frameWidth; out.height = r.frameHeight; }
      const codec = report.get(r.codecId);
      if (codec) out.codec = codec.mimeType.replace(/^video\//, '');
    });
    return out;
  }

  async function refresh() {
    if (finished()) return;
    const s = await readStats();
    if (s.width) $('resolution').textContent = s.width + '×' + s.height;
    if (s.codec) $('codec').textContent = s.codec;
    if (s.framesEncoded === undefined) return;
    const now = performance.now();
    if (last) {
      const sec = (now - last.at) / 1000;
      $('fps').textContent = ((s.framesEncoded - last.frames) / sec).toFixed(1);
      $('bitrate').textContent = Math.round((s.bytesSent - last.bytes) * 8 / sec / 1000) + ' kbit/s';
    }
    last = {frames: s.framesEncoded, bytes: s.bytesSent, at: now};
  }

  // Test hook (and handy in the console): what the page is sending right now.
  window.probe = async () => {
    const s = await readStats().catch(() => ({}));
    return {state, bytesSent: s.bytesSent || 0, framesEncoded: s.framesEncoded || 0, codec: s.codec || null,
            width: s.width || 0, height: s.height || 0, error: errorEl.textContent || null};
  };

  stopButton.onclick = stop;
  window.addEventListener('pagehide', () => {
    if (finished()) return;
    setState('stopped');
    hangUp(true);
  });
  setInterval(() => refresh().catch(() => {}), 1000);
  start().catch((e) => fail(e.message || String(e)));
})();
