// One source in full at /sources/<id>: live video with sound and stats, its state and measured media, its
// sessions (with kick), its events (history + live, filtered by type), motion snapshots and clips, recordings
// with seekable playback, and every URL an operator needs (curl lines with the token left out).
'use strict';
(() => {
  const {el, recording} = Icey;
  const $ = (id) => document.getElementById(id);
  const sourceId = decodeURIComponent(location.pathname.replace(/^\/sources\//, ''));
  const enc = encodeURIComponent(sourceId);
  const video = $('video'), errorEl = $('error');
  const MAX_EVENTS = 300, MAX_ARTIFACTS = 24;
  const FILTERS = {motion: 'Motion', speech: 'Speech', snapshot: 'Snapshots', clip: 'Clips', source: 'Source',
                   session: 'Sessions'};
  let item = null;          // the source's last /api/sources/<id>
  let viewer = null;        // the live Icey.Viewer, while playing
  let wantLive = true;      // the operator has not pressed Stop
  let liveState = 'starting';
  let retryAt = 0, retryMs = 2000;  // after a failed start: try again then, backing off

  document.title = 'icey · ' + sourceId;
  $('title').textContent = sourceId;

  // -- the source's state and media -----------------------------------------------------------------------

  function fact(name, value) {
    return value === null || value === undefined || value === '' ? null
      : el('div', {}, el('dt', {textContent: name}), el('dd', {textContent: String(value)}));
  }

  function showItem() {
    const s = $('state');
    s.textContent = item.state;
    s.className = 'state ' + item.state;
    $('badges').replaceChildren(...[
      recording(item) ? el('span', {className: 'badge rec', textContent: 'REC'}) : null,
      item.intelligence.vision.active ? el('span', {className: 'badge motion', textContent: 'MOTION'}) : null,
      item.intelligence.speech.active ? el('span', {className: 'badge speech', textContent: 'SPEECH'}) : null,
    ].filter(Boolean));
    const v = item.media.video, a = item.media.audio, w = item.worker;
    const vision = item.intelligence.vision, speech = item.intelligence.speech;
    $('facts').replaceChildren(...[
      fact('State', item.state + (item.online && item.onlineSince ? ' since ' + time(item.onlineSince) : '')),
      fact('Mode', item.mode),
      fact('Source', item.source.kind + ' ' + item.source.value),
      fact('Last error', item.lastError),
      fact('Next retry', item.nextRetryAt ? time(item.nextRetryAt) : null),
      fact('Reconnects', item.reconnects),
      fact('Video', v ? v.codec.toUpperCase() + ' ' + v.width + '×' + v.height + ' · ' + v.fps.toFixed(1) + ' fps · ' +
                        v.bitrateKbps + ' kbit/s' + (v.keyframeIntervalSec ? ' · keyframe every ' +
                        v.keyframeIntervalSec.toFixed(1) + ' s' : '') : null),
      fact('Audio', a ? a.codec + ' ' + a.sampleRate + ' Hz · ' + a.channels + ' ch' : null),
      fact('Last packet', item.media.lastPacketAgeMs !== null ? item.media.lastPacketAgeMs + ' ms ago' : null),
      fact('Viewers', item.sessions.active + ' now · ' + item.sessions.total + ' since start'),
      fact('Worker', w.state + (w.pid ? ' · pid ' + w.pid : '') + ' · ' + w.restarts + ' restarts' +
                     (w.uptimeSec !== null ? ' · up ' + Icey.ago(w.uptimeSec) : '')),
      fact('Motion', vision.enabled ? (vision.active ? 'in progress' : 'quiet') + ' · ' + vision.events + ' events · ' +
                     vision.analysisFps.toFixed(1) + ' fps analysed' : 'off'),
      fact('Speech', speech.enabled ? (speech.active ? 'in progress' : 'quiet') + ' · level ' +
                     speech.level.toFixed(3) + ' · ' + speech.events + ' events' : 'off'),
    ].filter(Boolean));
    const pages = [];
    if (item.mode !== 'record') pages.push(el('a', {href: '/watch/' + enc, textContent: 'Watch page'}));
    if (item.mode !== 'stream') pages.push(el('a', {href: '/publish/' + enc, textContent: 'Publish'}));
    if (!$('pages').childElementCount) $('pages').replaceChildren(...pages);
    for (const url of [vision.lastSnapshotUrl, vision.lastClipUrl]) if (url) addArtifact(url, null);
    $('play').disabled = item.mode === 'record';
    if (wantLive && !viewer && item.online && item.mode !== 'record' && Date.now() >= retryAt) play();
    if (!item.online) playerNotice(item.mode === 'record' ? 'A record source has nothing to watch live.'
      : 'The source is ' + item.state + '; live video starts when it is back.');
  }

  function time(rfc3339) {
    const d = new Date(rfc3339);
    return isNaN(d) ? rfc3339 : d.toLocaleString();
  }

  async function refreshItem() {
    try {
      item = await Icey.getJSON('/api/sources/' + enc);
      errorEl.textContent = '';
      showItem();
    } catch (e) {
      errorEl.textContent = 'Cannot read the source: ' + e.message;
    }
  }

  // -- live video --------------------------------------------------------------------------------------------

  function setLive(state) {
    liveState = state;
    $('live-state').textContent = state;
    $('play').textContent = viewer ? 'Stop' : 'Play';
  }

  function playerNotice(text) {
    $('player-notice').textContent = text;
    $('player-notice').hidden = !text;
  }

  async function play() {
    if (viewer) return;
    playerNotice('');
    viewer = new Icey.Viewer({
      sourceId, video, audio: true, timeoutMs: 15000,
      onPlaying: () => { retryMs = 2000; setLive('playing'); },
      onFail: (message) => {
        viewer = null;
        retryAt = Date.now() + retryMs;
        playerNotice('Live video failed: ' + message + (wantLive ? '\nTrying again in ' + Icey.ago(retryMs / 1000) : ''));
        retryMs = Math.min(retryMs * 2, 60000);
        setLive('error');
      },
    });
    setLive('connecting');
    viewer.start(await Icey.iceServers());
  }

  function stop(keepalive) {
    if (!viewer) return;
    viewer.stop(keepalive);
    viewer = null;
    setLive('stopped');
  }

  $('play').onclick = () => {
    wantLive = !viewer;
    retryAt = 0;
    if (viewer) stop(false); else play();
  };
  $('sound').onclick = () => {
    video.muted = !video.muted;
    $('sound').textContent = video.muted ? 'Unmute' : 'Mute';
  };
  $('fullscreen').onclick = () => {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else $('screen').requestFullscreen().catch(() => {});
  };
  window.addEventListener('pagehide', () => stop(true));

  // Bitrate, fps, RTT and packets lost from getStats(), once a second.
  let last = null;
  async function readStats() {
    const pc = viewer && viewer.pc;
    if (!pc || pc.signalingState === 'closed') return null;
    const report = await pc.getStats();
    const out = {bytes: 0, lost: 0, frames: 0, rtt: null, codec: null};
    report.forEach((r) => {
      if (r.type === 'inbound-rtp') {
        out.bytes += r.bytesReceived || 0;
        out.lost += r.packetsLost || 0;
        if (r.kind === 'video') { out.frames = r.framesDecoded || 0; out.codec = Icey.codecName(report, r); }
      } else if (r.type === 'transport' && r.selectedCandidatePairId) {
        const pair = report.get(r.selectedCandidatePairId);
        if (pair && pair.currentRoundTripTime !== undefined) out.rtt = pair.currentRoundTripTime;
      }
    });
    return out;
  }

  setInterval(async () => {
    let s = null;
    try { s = await readStats(); } catch (e) { /* the peer closed under getStats */ }
    if (!s) { last = null; return; }
    const now = performance.now();
    if (video.videoWidth) $('resolution').textContent = video.videoWidth + '×' + video.videoHeight;
    if (s.codec) $('codec').textContent = s.codec;
    $('lost').textContent = String(s.lost);
    $('rtt').textContent = s.rtt !== null ? Math.round(s.rtt * 1000) + ' ms' : '—';
    if (last) {
      const sec = (now - last.at) / 1000;
      const fps = (s.frames - last.frames) / sec;
      $('fps').textContent = fps.toFixed(1);
      $('bitrate').textContent = Math.round((s.bytes - last.bytes) * 8 / 1000 / sec) + ' kbit/s';
      if (liveState === 'playing' && fps === 0) setLive('stalled');
      else if (liveState === 'stalled' && fps > 0) setLive('playing');
    }
    last = {at: now, frames: s.frames, bytes: s.bytes};
  }, 1000);

  // -- sessions ------------------------------------------------------------------------------------------

  function bytes(n) {
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
    if (n < 1073741824) return (n / 1048576).toFixed(1) + ' MiB';
    return (n / 1073741824).toFixed(2) + ' GiB';
  }

  async function refreshSessions() {
    try {
      const doc = await Icey.getJSON('/api/sources/' + enc + '/sessions');
      $('sessions-count').textContent = '(' + doc.itemCount + ')';
      const mine = viewer && viewer.sessionId;
      $('sessions').replaceChildren(...(doc.items.length ? doc.items.map((s) => {
        const kick = el('button', {type: 'button', textContent: 'Kick'});
        kick.setAttribute('aria-label', 'Kick session ' + s.id);
        kick.onclick = () => kickSession(s.id, kick);
        return el('tr', {id: 'session-' + s.id},
          el('td', {}, el('code', {textContent: s.id}), s.id === mine ? el('span', {className: 'dim', textContent: ' (this page)'}) : null),
          el('td', {textContent: s.kind}), el('td', {textContent: s.remote}), el('td', {textContent: s.state}),
          el('td', {textContent: time(s.createdAt)}), el('td', {textContent: bytes(s.bytesSent)}),
          el('td', {textContent: bytes(s.bytesReceived)}), el('td', {}, kick));
      }) : [el('tr', {}, el('td', {colSpan: 8, className: 'dim', textContent: 'No sessions.'}))]));
    } catch (e) {
      $('sessions').replaceChildren(el('tr', {}, el('td', {colSpan: 8, className: 'error', textContent: e.message})));
    }
  }

  async function kickSession(id, button) {
    button.disabled = true;
    const resp = await Icey.api('/api/sources/' + enc + '/sessions/' + encodeURIComponent(id), {method: 'DELETE'});
    if (!resp.ok && resp.status !== 404) errorEl.textContent = 'Kick: ' + await Icey.describe(resp);
    refreshSessions();
  }

  // -- events, snapshots and clips ----------------------------------------------------------------------------

  const seen = new Set();
  let newest = 0;
  const filters = {};
  for (const [group, label] of Object.entries(FILTERS)) {
    const box = el('input', {type: 'checkbox', checked: true, id: 'filter-' + group});
    box.onchange = () => {
      filters[group] = box.checked;
      $('events').classList.toggle('hide-' + group, !box.checked);
    };
    filters[group] = true;
    $('filters').append(el('label', {htmlFor: box.id}, box, ' ' + label));
  }

  function describeEvent(ev) {
    const d = ev.data || {};
    switch (d.type) {
      case 'motion': return 'score ' + d.score.toFixed(3) + ' · ' + (d.regions || []).length + ' region(s)';
      case 'speech': return 'level ' + d.level.toFixed(3);
      case 'artifact': return (d.durationSec ? d.durationSec.toFixed(1) + ' s · ' : '') + bytes(d.bytes || 0);
      case 'source': return d.state + (d.detail ? ': ' + d.detail : '');
      case 'session': return d.kind + ' ' + d.sessionId + ' from ' + d.remote;
      default: return '';
    }
  }

  function addEvent(ev, id) {
    if (id) {
      if (seen.has(id)) return;
      seen.add(id);
      newest = Math.max(newest, id);
    }
    const group = ev.type.split('.')[0];
    const d = ev.data || {};
    const row = el('li', {className: 'event ev-' + group},
      el('time', {dateTime: ev.time, textContent: new Date(ev.time).toLocaleTimeString()}),
      el('span', {className: 'type', textContent: ev.type}),
      el('span', {className: 'detail', textContent: describeEvent(ev)}),
      d.url ? el('a', {href: Icey.withToken(d.url), textContent: 'open', target: '_blank', rel: 'noopener'}) : null);
    const list = $('events');
    list.prepend(row);
    while (list.childElementCount > MAX_EVENTS) list.lastElementChild.remove();
    if (d.type === 'artifact' && d.url) addArtifact(d.url, ev);
  }

  const artifacts = new Set();
  function addArtifact(url, ev) {
    if (artifacts.has(url)) return;
    artifacts.add(url);
    const area = $('artifacts');
    const empty = area.querySelector('p');
    if (empty) empty.remove();
    const src = Icey.withToken(url);
    const when = ev ? new Date(ev.time).toLocaleTimeString() : '';
    const isClip = /\.mp4$/i.test(url);
    const media = isClip ? el('video', {src, preload: 'metadata', muted: true, controls: true})
                         : el('img', {src, alt: 'Motion snapshot ' + when, loading: 'lazy'});
    const card = el('figure', {className: 'artifact'},
      isClip ? media : el('a', {href: src, target: '_blank', rel: 'noopener'}, media),  // a clip plays in place
      el('figcaption', {textContent: (isClip ? 'Clip ' : 'Snapshot ') + when}));
    area.prepend(card);
    while (area.childElementCount > MAX_ARTIFACTS) area.lastElementChild.remove();
  }

  async function loadEvents() {
    try {
      const doc = await Icey.getJSON('/api/sources/' + enc + '/events?limit=' + MAX_EVENTS);
      for (const ev of doc.items) addEvent(ev, ev.id);
    } catch (e) {
      errorEl.textContent = 'Cannot read the events: ' + e.message;
    }
    const query = {source: sourceId};
    if (newest) query.lastEventId = String(newest);  // nothing falls between the history and the stream
    Icey.events('', query, (type, ev, id) => {
      addEvent(ev, id ? Number(id) : 0);
      if (type.startsWith('session.')) refreshSessions();
      if (type.startsWith('source.') || type.startsWith('motion.') || type.startsWith('speech.')) refreshItem();
    });
  }

  // -- recordings ----------------------------------------------------------------------------------------

  function duration(sec) {
    const s = Math.round(sec);
    return (s >= 3600 ? Math.floor(s / 3600) + ':' : '') + String(Math.floor(s / 60) % 60).padStart(2, '0') + ':' +
           String(s % 60).padStart(2, '0');
  }

  async function refreshRecordings() {
    try {
      const doc = await Icey.getJSON('/api/sources/' + enc + '/recordings');
      const rows = doc.items.slice().reverse().map((r) => {
        const button = el('button', {type: 'button', textContent: 'Play'});
        button.setAttribute('aria-label', 'Play the recording from ' + time(r.start));
        button.onclick = () => {
          const player = $('recording-player');
          player.src = Icey.withToken(r.url);
          player.hidden = false;
          player.play().catch(() => {});
          player.scrollIntoView({block: 'nearest'});
        };
        return el('tr', {}, el('td', {textContent: time(r.start) + (r.open ? ' (recording)' : '')}),
                  el('td', {textContent: duration(r.durationSec)}), el('td', {textContent: bytes(r.bytes)}),
                  el('td', {}, button, ' ', el('a', {href: Icey.withToken(r.url), download: '', textContent: 'Download'})));
      });
      $('recordings').replaceChildren(...(rows.length ? rows
        : [el('tr', {}, el('td', {colSpan: 4, className: 'dim', textContent: 'No recordings.'}))]));
    } catch (e) {
      $('recordings').replaceChildren(el('tr', {}, el('td', {colSpan: 4, className: 'error', textContent: e.message})));
    }
  }

  // -- links ---------------------------------------------------------------------------------------------

  function showLinks() {
    const base = location.origin + '/api/sources/' + enc;
    const auth = Icey.tokenFor() ? '-H "Authorization: Bearer $ICEY_TOKEN" ' : '';
    const code = (text) => el('code', {textContent: text});
    const rows = [
      ['WHEP (play)', base + '/whep'],
      ['Snapshot', base + '/snapshot.jpg?w=640&maxAge=2'],
      ['Events (SSE)', location.origin + '/api/events?source=' + enc],
      ['Event history', base + '/events?limit=50'],
      ['Recordings', base + '/recordings'],
      ['Probe', base + '/probe'],
      ['curl: snapshot', 'curl -fsS ' + auth + "'" + base + "/snapshot.jpg?w=640' -o " + sourceId + '.jpg'],
      ['curl: events', 'curl -N ' + auth + "'" + location.origin + '/api/events?source=' + enc + "'"],
      ['curl: state', 'curl -fsS ' + auth + "'" + base + "'"],
    ];
    $('links').replaceChildren(...rows.map(([name, value]) => el('div', {}, el('dt', {textContent: name}),
                                                                el('dd', {}, code(value)))));
  }

  // Test hook (and handy in the console).
  window.probe = async () => {
    const s = await readStats().catch(() => null);
    return {state: liveState, videoWidth: video.videoWidth, framesDecoded: s ? s.frames : 0,
            sessionId: viewer ? viewer.sessionId : null, events: $('events').childElementCount,
            artifacts: $('artifacts').querySelectorAll('figure').length,
            recordings: $('recordings').querySelectorAll('button').length};
  };

  showLinks();
  refreshItem().then(() => {
    refreshSessions();
    loadEvents();
    refreshRecordings();
  });
  setInterval(refreshItem, 2000);
  setInterval(refreshSessions, 2000);
  setInterval(refreshRecordings, 30000);
})();
