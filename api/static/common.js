// Shared by the pages: the access token (asked once, kept in sessionStorage for this tab), API calls that
// always carry it, Server-Sent Events that reconnect, WHEP/WHIP offer exchange, and (for the watch and
// publish pages) one WHEP/WHIP session: offer -> POST -> answer, Stop, and hanging up.
//
// Every call takes an optional `origin` ('' or undefined: this server; else 'https://other:4500', a box of
// the wall): each origin has its own token.
'use strict';
const Icey = (() => {
  const TOKEN_KEY = 'icey.token ', REFUSED_KEY = 'icey.refused ';
  const here = location.origin;
  const EVENT_TYPES = ['motion.start', 'motion.end', 'speech.start', 'speech.stop', 'snapshot', 'clip',
                       'source.online', 'source.offline', 'session.opened', 'session.closed'];

  function store(key, value) {
    try {
      if (value) sessionStorage.setItem(key, value); else sessionStorage.removeItem(key);
    } catch (e) { /* storage disabled: the token lives as long as the page */ }
  }

  function load(key) {
    try { return sessionStorage.getItem(key) || ''; } catch (e) { return ''; }
  }

  function tokenFor(origin) {
    return load(TOKEN_KEY + (origin || here));
  }

  function setToken(origin, value) {
    store(TOKEN_KEY + (origin || here), value);
    store(REFUSED_KEY + (origin || here), '');
  }

  // ?token= in the page address (scripts and old links): kept like a typed token, then removed from the
  // address so it stays out of the history and of anything copied from the address bar.
  (() => {
    const params = new URLSearchParams(location.search);
    if (!params.has('token')) return;
    setToken(here, params.get('token'));
    params.delete('token');
    const rest = params.toString();
    history.replaceState(history.state, '', location.pathname + (rest ? '?' + rest : '') + location.hash);
  })();

  function headers(extra, origin) {
    const h = Object.assign({}, extra || {});
    const token = tokenFor(origin);
    if (token) h.Authorization = 'Bearer ' + token;
    return h;
  }

  // `url` with ?token= for what cannot send a header (EventSource, <video src>, <img src>). The server never
  // logs query strings.
  function withToken(url, origin) {
    const token = tokenFor(origin);
    if (!token) return url;
    return url + (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token);
  }

  // -- the token form -------------------------------------------------------------------------------------

  const forms = new Map();  // origin -> its form, while shown
  const waiting = new Map();  // origin -> callbacks for when a token is entered

  // The small form that asks for `origin`'s token, once however many calls got a 401. Each caller's
  // `onToken()` runs after the token is stored; a caller without one reloads the page.
  function askToken(origin, onToken) {
    origin = origin || here;
    if (!waiting.has(origin)) waiting.set(origin, []);
    waiting.get(origin).push(onToken || (() => location.reload()));
    if (forms.has(origin)) return;
    const refused = load(REFUSED_KEY + origin) === '1';
    const id = 'token-' + forms.size;
    const input = el('input', {type: 'password', name: 'token', id: id + '-input', autocomplete: 'off',
                               required: true, spellcheck: false});
    const form = el('form', {className: 'token-form'},
      el('h2', {id: id + '-title', textContent: 'Access token needed'}),
      el('p', {textContent: (origin === here ? 'This server' : origin) +
        ' asks for its access token. It is kept for this browser tab only.'}),
      el('p', {className: 'error', role: 'alert', textContent: refused
        ? 'That token was refused (401 unauthorized). Check it and try again.' : ''}),
      el('div', {className: 'row'},
        el('label', {htmlFor: id + '-input', textContent: 'Token'}), input,
        el('button', {type: 'submit', textContent: 'Use token'})));
    form.setAttribute('aria-labelledby', id + '-title');
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      setToken(origin, input.value.trim());
      form.remove();
      forms.delete(origin);
      const callbacks = waiting.get(origin) || [];
      waiting.delete(origin);
      callbacks.forEach((cb) => cb());
    });
    forms.set(origin, form);
    authArea().append(form);
    if (forms.size === 1) input.focus();
  }

  function authArea() {
    let area = document.getElementById('auth');
    if (!area) {
      area = el('div', {id: 'auth'});
      (document.querySelector('main') || document.body).prepend(area);
    }
    return area;
  }

  // A 401 from `origin`: forget a token it refused (and say so in the form), then ask for one.
  function unauthorized(origin, onToken) {
    origin = origin || here;
    if (tokenFor(origin)) {
      store(TOKEN_KEY + origin, '');
      store(REFUSED_KEY + origin, '1');
    }
    askToken(origin, onToken);
  }

  // -- API calls -------------------------------------------------------------------------------------------

  // fetch() on `origin`'s API with its token; resolves to the Response whatever its status. A 401 brings up
  // the token form (`onToken`, if given, runs once a token is entered; else the page reloads).
  async function api(path, options, origin, onToken) {
    const opts = Object.assign({cache: 'no-store'}, options || {});
    opts.headers = headers(opts.headers, origin);
    const resp = await fetch((origin || '') + path, opts);
    if (resp.status === 401) unauthorized(origin, onToken);
    return resp;
  }

  // "401 unauthorized: detail" from the server's JSON error shape, or the bare status.
  async function describe(resp) {
    let text = resp.status + ' ' + resp.statusText;
    try {
      const body = await resp.json();
      if (body.error) text = resp.status + ' ' + body.error + (body.detail ? ': ' + body.detail : '');
    } catch (e) { /* not JSON */ }
    if (resp.status === 401) {
      text += '\nThis server needs an access token: enter it in the form above (or open the page with ?token=<token>).';
    }
    return text;
  }

  async function getJSON(path, origin, onToken) {
    const resp = await api(path, undefined, origin, onToken);
    if (!resp.ok) throw new Error(await describe(resp));
    return resp.json();
  }

  // A source item's recording badge: what its worker reports (a recording that fails shows no REC).
  function recording(item) {
    return !!(item.record && item.record.state === 'recording' && item.online);
  }

  // el('td', {className: 'x'}, 'text', child...): DOM without innerHTML (source data is never markup).
  function el(tag, props, ...children) {
    const node = Object.assign(document.createElement(tag), props || {});
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  // "3 s", "4 min", "2 h" for a duration in seconds.
  function ago(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 90) return s + ' s';
    if (s < 5400) return Math.round(s / 60) + ' min';
    return Math.round(s / 3600) + ' h';
  }

  // -- events ----------------------------------------------------------------------------------------------

  // GET /api/events as Server-Sent Events, resumed where it stopped (Last-Event-ID) whatever ended it: the
  // browser retries a dropped stream by itself; a refused or failed one is reopened here with backoff.
  //   query            {source: 'a,b', type: 'motion,speech'} (optional)
  //   onEvent(type, event, id)   every event; onState('open' | 'reconnecting')
  // Returns {close()}.
  function events(origin, query, onEvent, onState) {
    let source = null, lastId = '', delay = 1000, timer = null, closed = false;
    const report = onState || (() => {});

    function open() {
      const q = new URLSearchParams(query || {});
      if (lastId) q.set('lastEventId', lastId);
      source = new EventSource(withToken((origin || '') + '/api/events?' + q, origin));
      source.onopen = () => { delay = 1000; report('open'); };
      source.onerror = () => {
        report('reconnecting');
        if (source.readyState !== EventSource.CLOSED || closed) return;  // the browser retries by itself
        timer = setTimeout(open, delay);
        delay = Math.min(delay * 2, 30000);
      };
      for (const type of EVENT_TYPES) {
        source.addEventListener(type, (e) => {
          if (e.lastEventId) lastId = e.lastEventId;
          let data;
          try { data = JSON.parse(e.data); } catch (err) { return; }
          onEvent(type, data, e.lastEventId);
        });
      }
    }

    open();
    return {close() { closed = true; clearTimeout(timer); if (source) source.close(); }};
  }

  // -- WebRTC ----------------------------------------------------------------------------------------------

  // STUN/TURN for the RTCPeerConnection. Never fatal: without them a session can still work over the
  // server's host candidates, and the WHEP/WHIP answer is what decides, with its own error to show.
  async function iceServers(origin) {
    try {
      return (await getJSON('/api/config', origin, () => {})).iceServers || [];
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

  // POST the offer to /api/sources/<sourceId>/<kind> of `origin`: {sdp (the answer), location (the session's
  // URL, for its DELETE)}. Throws with the server's error ("WHEP 401 unauthorized: ...").
  async function exchange(kind, sourceId, offerSdp, origin, onToken) {
    const resp = await api('/api/sources/' + encodeURIComponent(sourceId) + '/' + kind,
      {method: 'POST', headers: {'Content-Type': 'application/sdp'}, body: offerSdp}, origin, onToken);
    if (!resp.ok) throw new Error(kind.toUpperCase() + ' ' + await describe(resp));
    const where = resp.headers.get('Location');
    const base = origin || location.href;
    return {sdp: await resp.text(), location: where ? new URL(where, base).href : null};
  }

  // One WHEP viewer session into a <video>: offer (recvonly video, and audio when asked) -> answer, DELETEd
  // when it stops so the server frees the viewer at once (not after ICE times out). `onPlaying()` runs once
  // frames show; `onFail(message)` when it cannot: an error, ICE failure, or no picture within `timeoutMs`.
  class Viewer {
    constructor({sourceId, video, origin, audio, timeoutMs, onPlaying, onFail, onToken}) {
      Object.assign(this, {sourceId, video, origin, audio: !!audio, timeoutMs: timeoutMs || 10000,
                           onPlaying, onFail, onToken: onToken || (() => {})});
      this.pc = null;
      this.location = null;  // the session's URL, until it is deleted
      this.stopped = false;
      this.timer = null;
    }

    // The session's id on the server (the last part of its URL), once it exists.
    get sessionId() {
      return this.location ? decodeURIComponent(this.location.split('/').pop()) : null;
    }

    async start(iceServers) {
      const video = this.video;
      this.timer = setTimeout(() => this.fail('no picture within ' + this.timeoutMs / 1000 + ' s'), this.timeoutMs);
      try {
        const pc = this.pc = new RTCPeerConnection({iceServers});
        pc.addTransceiver('video', {direction: 'recvonly'});
        if (this.audio) pc.addTransceiver('audio', {direction: 'recvonly'});
        const stream = new MediaStream();
        pc.ontrack = (e) => { stream.addTrack(e.track); video.srcObject = stream; };
        pc.onconnectionstatechange = () => {
          if (pc.connectionState === 'failed') this.fail('the connection failed: no network path (ICE/DTLS)');
        };
        video.onplaying = () => {
          if (this.stopped) return;
          clearTimeout(this.timer);
          this.onPlaying();
        };
        await pc.setLocalDescription(await pc.createOffer());
        await gatheringDone(pc, 2000);
        if (this.stopped) return;
        const answer = await exchange('whep', this.sourceId, pc.localDescription.sdp, this.origin, this.onToken);
        this.location = answer.location;
        if (this.stopped) { this.hangUp(false); return; }
        await pc.setRemoteDescription({type: 'answer', sdp: answer.sdp});
      } catch (e) {
        this.fail(e.message || String(e));
      }
    }

    fail(message) {
      if (this.stopped) return;
      this.stop(false);
      this.onFail(message);
    }

    hangUp(keepalive) {
      const url = this.location;
      this.location = null;
      if (url) api(url, {method: 'DELETE', keepalive: !!keepalive}, this.origin, () => {}).catch(() => {});
    }

    // Ends it: DELETE (keepalive when the page is going away), close the peer, empty the <video>.
    stop(keepalive) {
      this.stopped = true;
      clearTimeout(this.timer);
      this.hangUp(keepalive);
      if (this.pc) this.pc.close();
      this.video.onplaying = null;
      this.video.srcObject = null;
    }
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
      const answer = await exchange(kind, sourceId, pc.localDescription.sdp);
      resource = answer.location;
      if (finished()) return hangUp(false);  // stopped while the offer was in flight: delete what it made
      await pc.setRemoteDescription({type: 'answer', sdp: answer.sdp});
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

  return {here, tokenFor, setToken, headers, withToken, askToken, api, describe, getJSON, el, recording, ago, events,
          iceServers, gatheringDone, exchange, Viewer, codecName, statsBar, session};
})();
