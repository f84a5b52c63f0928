// Shared by the viewer pages: the token from ?token= and API calls that always carry it, and (for the
// watch and publish pages) one WHEP/WHIP session: offer -> POST -> answer, Stop, and hanging up.
'use strict';
const Icey = (() => {
  const token = new URLSearchParams(location.search).get('token') || '';

  function headers(extra) {
    const h = Object.assign({}, extra || {});
    if (token) h.Authorization = 'Bearer ' + token;
    return h;
  }

  // fetch() on the API with the token; resolves to the Response whatever its status.
  function api(path, options) {
    const opts = Object.assign({cache: 'no-store'}, options || {});
    opts.headers = headers(opts.headers);
    return fetch(path, opts);
  }

  // "401 unauthorized: detail" from the server's JSON error shape, or the bare status.
  async function describe(resp) {
    let text = resp.status + ' ' + resp.statusText;
    try {
      const body = await resp.json();
      if (body.error) text = resp.status + ' ' + body.error + (body.detail ? ': ' + body.detail : '');
    } catch (e) { /* not JSON */ }
    if (resp.status === 401) text += '\nThis server needs an access token: open this page with ?token=<token>.';
    return text;
  }

  async function getJSON(path) {
    const resp = await api(path);
    if (!resp.ok) throw new Error(await describe(resp));
    return resp.json();
  }

  // A same-origin link that keeps the token.
  function link(path) {
    return token ? path + '?token=' + encodeURIComponent(token) : path;
  }

  // el('td', {className: 'x'}, 'text', child...): DOM without innerHTML (source data is never markup).
  function el(tag, props, ...children) {
    const node = Object.assign(document.createElement(tag), props || {});
    for (const child of children) node.append(child);
    return node;
  }

  // STUN/TURN for the RTCPeerConnection. Never fatal: without them a session can still work over the
  // server's host candidates, and the WHEP/WHIP answer is what decides, with its own error to show.
  async function iceServers() {
    try {
      return (await getJSON('/api/config')).iceServers || [];
    } catch (e) {
      console.warn('no ICE servers from /api/config:', e.message);
      return [];
    }
  }

  // Resolves once `pc` has gathered its candidates, or after `maxMs`: the server does not trickle, so
  // every candidate has to be in the offer; a slow STUN/TURN server only costs its own candidates.
  function gatheringDone(pc, maxMs) {
    return new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      const timer = setTimeout(resolve, maxMs);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(); }
      });
    });
  }

  // "H264" for an inbound-rtp/outbound-rtp entry of a getStats() report, or undefined while the codec
  // is not negotiated yet.
  function codecName(report, rtp) {
    const codec = report.get(rtp.codecId);
    return codec ? codec.mimeType.replace(/^(video|audio)\//, '') : undefined;
  }

  // The Codec and FPS fields both pages show, fed one stats sample a second. Returns update(codec, counters),
  // `counters` being running totals ({frames: decoded or encoded, bytes: ...}): it shows the codec and the
  // frame rate, and returns each counter per second since the previous sample for the page's own fields
  // (null on the first sample, and while there is no frame counter yet).
  function statsBar({codecEl, fpsEl}) {
    let last = null;  // {counters, at} of the previous sample
    return (codec, counters) => {
      if (codec) codecEl.textContent = codec;
      if (counters.frames === undefined) return null;
      const now = performance.now(), prev = last;
      last = {counters, at: now};
      if (!prev) return null;
      const sec = (now - prev.at) / 1000, rates = {};
      for (const k of Object.keys(counters)) rates[k] = (counters[k] - prev.counters[k]) / sec;
      fpsEl.textContent = rates.frames.toFixed(1);
      return rates;
    };
  }

  // One WHEP ('whep': play) or WHIP ('whip': publish) session of a page, from the offer to its end.
  //   kind, sourceId        what to POST the offer to: /api/sources/<sourceId>/<kind>
  //   stateEl, errorEl      where the state name and the error text are shown
  //   stopButton            enabled once the session exists on the server, wired to stop()
  //   video                 the page's <video>, emptied by Stop
  //   connectedState()      the state name to show when the peer connects ('playing', 'publishing', ...)
  //   onEnd()               optional: release what the page holds (the camera) whenever the session ends
  // It ends with a DELETE of the session's Location (Stop, an error, the page going away), so the server
  // frees it at once instead of waiting for ICE to time out.
  function session({kind, sourceId, stateEl, errorEl, stopButton, video, connectedState, onEnd}) {
    let state = 'starting'; // the page's state name; 'stopped' and 'error' are final
    let pc = null;          // the RTCPeerConnection, once peer() made it
    let resource = null;    // the session's URL (Location of the 201), until it is deleted

    function setState(s) {
      state = s;
      stateEl.textContent = s;
    }

    function finished() {
      return state === 'stopped' || state === 'error';
    }

    // Ends the session: DELETE it (keepalive when the page is going away), close the peer, let the
    // page release the rest. Returns the DELETE's fetch promise, or null when there is nothing to delete.
    function hangUp(keepalive) {
      const url = resource;
      resource = null;
      stopButton.disabled = true;
      const req = url ? api(url, {method: 'DELETE', keepalive: !!keepalive}) : null;
      if (pc) pc.close();
      if (onEnd) onEnd();
      return req;
    }

    function fail(message) {
      setState('error');
      errorEl.textContent = message;
      const req = hangUp(false);
      if (req) req.catch(() => {});  // the error shown is the one that ended the session
    }

    async function stop() {
      setState('stopped');
      const req = hangUp(false);
      video.srcObject = null;
      if (!req) return;
      try {
        const resp = await req;
        // 404: the server had already ended it (e.g. a restart), which is what Stop wanted anyway
        if (!resp.ok && resp.status !== 404) errorEl.textContent = 'Stop: ' + await describe(resp);
      } catch (e) {
        errorEl.textContent = 'Stop: ' + e.message;
      }
    }

    // The session's RTCPeerConnection, whose connection state drives the page's state from here on.
    function peer(config) {
      pc = new RTCPeerConnection(config);
      pc.onconnectionstatechange = () => {
        if (finished()) return;
        const s = pc.connectionState;
        if (s === 'connected') setState(connectedState());
        else if (s === 'disconnected') setState('disconnected');  // ICE may still recover on its own
        else if (s === 'failed') fail('The connection failed: no network path to the server (ICE/DTLS).');
      };
      return pc;
    }

    // Offer (with every candidate) -> POST /api/sources/<id>/<kind> -> answer. Throws with the server's
    // error ("WHEP 401 unauthorized: ...") for the page to fail() with.
    async function negotiate() {
      await pc.setLocalDescription(await pc.createOffer());
      await gatheringDone(pc, 2000);
      if (finished()) return hangUp(false);  // the page went away while the candidates were gathered
      setState('connecting');
      const resp = await api('/api/sources/' + encodeURIComponent(sourceId) + '/' + kind,
        {method: 'POST', headers: {'Content-Type': 'application/sdp'}, body: pc.localDescription.sdp});
      if (!resp.ok) throw new Error(kind.toUpperCase() + ' ' + await describe(resp));
      const where = resp.headers.get('Location');
      resource = where ? new URL(where, location.href).href : null;
      if (finished()) return hangUp(false);  // stopped while the offer was in flight: delete what it made
      await pc.setRemoteDescription({type: 'answer', sdp: await resp.text()});
      stopButton.disabled = false;
    }

    // Every `ms` until the session ends: show(await read()), the page's stats display. A failed sample
    // (the peer closing under getStats) is only a missed update.
    function monitor(ms, read, show) {
      setInterval(async () => {
        if (finished()) return;
        try {
          show(await read());
        } catch (e) { /* the next sample will do */ }
      }, ms);
    }

    stopButton.onclick = stop;
    // Closing or leaving the page: a keepalive DELETE still reaches the server after the page is gone.
    window.addEventListener('pagehide', () => {
      if (finished()) return;
      setState('stopped');
      hangUp(true);
    });

    return {
      get state() { return state; },
      setState, finished, hangUp, fail, stop, peer, negotiate, monitor,
    };
  }

  return {token, headers, api, describe, getJSON, link, el,
          iceServers, gatheringDone, codecName, statsBar, session};
})();
