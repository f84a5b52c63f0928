// Publish this browser's camera and microphone to one source over WHIP: getUserMedia -> offer (sendonly
// video, H.264 first, + audio) -> POST /api/sources/<id>/whip -> answer. Only record and relay sources take
// a publisher. The session itself (POST, Stop, DELETE when the page goes away) is Icey.session() in common.js.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const video = $('video'), errorEl = $('error');
  const sourceId = decodeURIComponent(location.pathname.replace(/^\/publish\//, ''));
  let pc = null;     // the RTCPeerConnection
  let media = null;  // the camera + microphone MediaStream
  // States: starting | connecting | publishing | disconnected | stopped | error
  const session = Icey.session({
    kind: 'whip', sourceId, stateEl: $('state'), errorEl, stopButton: $('stop'), video,
    connectedState: () => 'publishing',
    // whatever ends the session also turns the camera off (its light too)
    onEnd: () => { if (media) media.getTracks().forEach((t) => t.stop()); },
  });

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
    if (!window.RTCPeerConnection) throw new Error('This browser has no WebRTC (RTCPeerConnection).');
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new Error('The camera is only available to pages served over HTTPS or from localhost.');
    }
    const sending = h264First((RTCRtpSender.getCapabilities('video') || {codecs: []}).codecs);
    if (!sending) throw new Error('This browser cannot send H.264, the only video codec the server takes.');
    const iceServers = await Icey.iceServers();
    try {
      media = await navigator.mediaDevices.getUserMedia({video: {width: 1280, height: 720}, audio: true});
    } catch (e) {
      throw new Error('No camera/microphone: ' + (e.name ? e.name + ': ' : '') + e.message);
    }
    if (session.finished()) return session.hangUp(false);  // stopped while the browser asked for the camera
    video.srcObject = media;
    pc = session.peer({iceServers});
    const videoTrack = media.getVideoTracks()[0], audioTrack = media.getAudioTracks()[0];
    if (!videoTrack) throw new Error('The camera gave no video track.');
    preferH264(pc.addTransceiver(videoTrack, {direction: 'sendonly', streams: [media]}), sending);
    if (audioTrack) pc.addTransceiver(audioTrack, {direction: 'sendonly', streams: [media]});
    await session.negotiate();
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
      out.codec = Icey.codecName(report, r);
    });
    return out;
  }

  const bar = Icey.statsBar({codecEl: $('codec'), fpsEl: $('fps')});

  // The stats line under the preview, every second.
  function show(s) {
    if (s.width) $('resolution').textContent = s.width + '×' + s.height;
    const r = bar(s.codec, {frames: s.framesEncoded, bytes: s.bytesSent});
    if (r) $('bitrate').textContent = Math.round(r.bytes * 8 / 1000) + ' kbit/s';
  }

  // Test hook (and handy in the console): what the page is sending right now.
  window.probe = async () => {
    const s = await readStats().catch(() => ({}));
    return {state: session.state, bytesSent: s.bytesSent || 0, framesEncoded: s.framesEncoded || 0,
            codec: s.codec || null, width: s.width || 0, height: s.height || 0, error: errorEl.textContent || null};
  };

  session.monitor(1000, readStats, show);
  start().catch((e) => session.fail(e.message || String(e)));
})();
