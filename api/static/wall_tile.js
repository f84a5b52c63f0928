// One tile of the camera wall: a source's still picture (the snapshot endpoint, refreshed while the tile is
// on screen), its live video over WHEP when the wall lets it go live, and its badges (state, media, viewers,
// REC, motion outline, speech). The wall (wall.js) decides which tiles are live; a tile only does it.
'use strict';
const WallTile = (() => {
  const {el, recording} = Icey;
  const RETRY_FIRST_MS = 2000, RETRY_MAX_MS = 60000;
  const REGION_HOLD_MS = 1500;  // a motion outline stays this long after the motion ends

  function domId(box, id) {
    return 'source-' + (box.label ? box.label.replace(/[^A-Za-z0-9_-]/g, '_') + '-' : '') + id;
  }

  function badge(className, text) {
    return el('span', {className: 'badge ' + className, textContent: text, hidden: true});
  }

  class Tile {
    // box: {origin, label, poll()}; item: the source's entry in the box's /api/status
    constructor(box, item, hooks) {
      this.box = box;
      this.id = item.id;
      this.key = box.origin + '|' + item.id;
      this.hooks = hooks;  // {toggleLive(tile), open(tile), changed(tile, text)}
      this.item = item;
      this.onScreen = false;
      this.pinnedAt = 0;         // clicked live at (ms): the newest click wins a slot
      this.activeKinds = new Set();  // 'motion', 'speech': in progress (?live=motion)
      this.activeUntil = 0;      // Infinity while any is in progress, then until the linger ends (ms)
      this.dismissedAt = 0;      // the operator sent it back to stills while the wall wanted it live
      this.live = null;          // the Icey.Viewer, while the tile is live
      this.liveSince = 0;
      this.playing = false;      // the live video shows frames
      this.retryAt = 0;          // after a live failure: stills until then
      this.retryMs = RETRY_FIRST_MS;
      this.liveProblem = '';
      this.stillUrl = null;      // blob: URL of the picture shown
      this.stillAt = 0;          // when that picture was taken (ms, from the server's frame time)
      this.stillTag = null;      // its ETag
      this.stillLoading = false;
      this.stillFailed = '';
      this.regionsTimer = null;
      this.lastStateText = '';
      this.build();
      this.update(item);
    }

    build() {
      const p = this.parts = {};
      p.still = el('img', {className: 'still', alt: '', decoding: 'async'});
      p.video = el('video', {className: 'live', muted: true, autoplay: true, playsInline: true});
      p.video.setAttribute('aria-hidden', 'true');
      p.regions = el('div', {className: 'regions'});
      p.regions.setAttribute('aria-hidden', 'true');
      p.name = el('span', {className: 'name', textContent: this.id});
      p.rec = badge('rec', 'REC');
      p.liveBadge = badge('live-badge', 'LIVE');
      p.motion = badge('motion', 'MOTION');
      p.speech = el('span', {className: 'badge speech', hidden: true},
                    el('i'), el('i'), el('i'), document.createTextNode('SPEECH'));
      p.notice = el('div', {className: 'notice', hidden: true});
      p.state = el('span', {className: 'state'});
      p.media = el('span', {className: 'media'});
      p.viewers = el('span', {className: 'viewers', textContent: '0'});
      p.viewersWord = document.createTextNode(' viewers');
      p.links = el('span', {className: 'links'});
      const top = el('div', {className: 'overlay top'}, p.name,
                     this.box.label ? el('span', {className: 'box-name', textContent: this.box.label}) : null,
                     el('span', {className: 'spacer'}), p.speech, p.motion, p.rec, p.liveBadge);
      const bottom = el('div', {className: 'overlay bottom'}, p.state, p.media,
                        el('span', {className: 'viewer-count', title: 'viewers'}, p.viewers, p.viewersWord),
                        el('span', {className: 'spacer'}), p.links);
      p.frame = el('div', {className: 'frame'}, p.still, p.video, p.regions, p.notice, top, bottom);
      this.node = el('article', {className: 'tile', id: domId(this.box, this.id), tabIndex: 0}, p.frame);
      this.node.tile = this;
      this.node.addEventListener('click', (e) => {
        if (e.target.closest('a')) return;  // the links do their own thing
        this.hooks.toggleLive(this);
      });
      this.node.addEventListener('keydown', (e) => {
        if (e.target !== this.node || e.altKey || e.ctrlKey || e.metaKey) return;
        if (e.key === 'Enter') { e.preventDefault(); this.hooks.open(this); }
        else if (e.key === ' ') { e.preventDefault(); this.hooks.toggleLive(this); }
        else if (e.key === 'f' || e.key === 'F') { e.preventDefault(); this.fullscreen(); }
      });
      p.still.addEventListener('load', () => this.fitTo(p.still.naturalWidth, p.still.naturalHeight));
      p.video.addEventListener('resize', () => this.fitTo(p.video.videoWidth, p.video.videoHeight));
    }

    fullscreen() {
      if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
      else if (this.node.requestFullscreen) this.node.requestFullscreen().catch(() => {});
    }

    // The frame takes the picture's shape, so the outline regions (normalized) lie where they belong.
    fitTo(width, height) {
      if (width > 0 && height > 0) this.parts.frame.style.aspectRatio = width + ' / ' + height;
    }

    get online() { return this.item.state === 'online' && this.workerUp; }
    get workerUp() { return !this.item.worker || this.item.worker.state === 'running'; }
    get playable() { return this.item.mode !== 'record'; }
    get sourceUrl() { return this.box.origin + '/sources/' + encodeURIComponent(this.id); }

    // -- status ------------------------------------------------------------------------------------------

    update(item) {
      const wasOnline = this.online;
      this.item = item;
      const p = this.parts;
      const video = item.media && item.media.video;
      if (video && !this.stillUrl && !this.playing) this.fitTo(video.width, video.height);
      p.media.replaceChildren(...(video ? [el('span', {className: 'codec', textContent: video.codec.toUpperCase() + ' '}),
        video.width + '×' + video.height + (video.fps ? ' · ' + Math.round(video.fps) + ' fps' : '')] : []));
      const viewers = (item.sessions || {}).active || 0;
      p.viewers.textContent = String(viewers);
      p.viewersWord.textContent = viewers === 1 ? ' viewer' : ' viewers';
      p.rec.hidden = !recording(item);
      const intel = item.intelligence || {};
      if (intel.vision && !intel.vision.active && !this.regionsTimer) this.showRegions([]);
      p.motion.hidden = !(intel.vision && intel.vision.active);
      p.speech.hidden = !(intel.speech && intel.speech.active);
      this.links();
      this.showState();
      if (this.online && !wasOnline) this.refreshStill();
    }

    links() {
      const p = this.parts, id = encodeURIComponent(this.id), base = this.box.origin;
      if (p.links.childElementCount) return;
      const links = [el('a', {href: this.sourceUrl, textContent: 'Details'})];
      if (this.playable) links.push(el('a', {href: base + '/watch/' + id, textContent: 'Watch'}));
      if (this.item.mode === 'record' || this.item.mode === 'relay') {
        links.push(el('a', {href: base + '/publish/' + id, textContent: 'Publish'}));
      }
      p.links.replaceChildren(...links);
    }

    // The state word at the bottom, and the notice in the middle when something needs saying.
    showState() {
      const item = this.item, p = this.parts, now = Date.now();
      let state = item.state, notice = '';
      if (this.box.problem) {
        notice = this.box.problem.split('\n')[0];  // what follows is the last state it told us
      } else if (!this.workerUp) {
        state = item.worker.state;
        const next = item.worker.nextRestartInMs;
        notice = item.worker.state === 'given-up' ? 'Worker gave up after repeated crashes'
          : 'Worker restarting' + (next !== null && next !== undefined ? ' · next try in ' + Icey.ago(next / 1000) : '');
      } else if (item.state === 'reconnecting') {
        const at = item.nextRetryAt ? Date.parse(item.nextRetryAt) : 0;
        notice = 'Reconnecting' + (at ? ' · retry in ' + Icey.ago(Math.max(0, (at - now) / 1000)) : '') +
                 (item.lastError ? '\n' + item.lastError : '');
      } else if (item.state === 'failed') {
        notice = 'Failed' + (item.lastError ? ': ' + item.lastError : '');
      } else if (item.state === 'offline') {
        notice = this.item.mode === 'stream' ? 'Offline' : 'Waiting for a publisher';
      } else if (item.state === 'starting' || item.state === 'connecting') {
        notice = 'Connecting…';
      } else if (item.state === 'stopped') {
        notice = 'Stopped';
      } else if (this.liveProblem) {
        notice = this.liveProblem + (this.retryAt > now && this.retryAt < Infinity
          ? '\nStills until a retry in ' + Icey.ago((this.retryAt - now) / 1000) : '');
      } else if (this.stillFailed && !this.playing) {
        notice = this.stillFailed;
      }
      if (!this.online && this.stillAt) notice += '\nLast picture ' + Icey.ago((now - this.stillAt) / 1000) + ' ago';
      p.state.textContent = state;
      p.state.className = 'state ' + state;
      p.notice.textContent = notice;
      p.notice.hidden = !notice;
      this.node.classList.toggle('down', !this.online || !!this.box.problem);
      this.node.classList.toggle('is-live', !!this.live);
      this.node.classList.toggle('playing', this.playing);
      p.liveBadge.hidden = !this.playing;
      const media = p.media.textContent ? ', ' + p.media.textContent : '';
      const label = this.id + (this.box.label ? ' on ' + this.box.label : '') + ': ' + state + media +
                    ', ' + p.viewers.textContent + p.viewersWord.textContent + (this.playing ? ', live' : '') +
                    (recording(item) ? ', recording' : '') + (notice ? '. ' + notice.replace(/\n/g, '. ') : '');
      this.node.setAttribute('aria-label', label);
      const said = state + (this.playing ? ' live' : '');
      if (said !== this.lastStateText) {
        if (this.lastStateText) this.hooks.changed(this, this.id + ' is ' + said);
        this.lastStateText = said;
      }
    }

    // -- events (SSE) ------------------------------------------------------------------------------------

    event(type, ev) {
      const data = ev.data || {};
      if (type === 'source.online' || type === 'source.offline') {
        this.item = Object.assign({}, this.item, {state: data.state || (type === 'source.online' ? 'online' : 'offline'),
                                                  lastError: data.detail || this.item.lastError});
        this.showState();
        if (type === 'source.online') this.refreshStill();
      } else if (type === 'motion.start' || type === 'motion.end') {
        const active = type === 'motion.start';
        this.parts.motion.hidden = !active;
        clearTimeout(this.regionsTimer);
        this.regionsTimer = null;
        this.showRegions(data.regions || []);
        if (!active) {
          this.regionsTimer = setTimeout(() => { this.regionsTimer = null; this.showRegions([]); }, REGION_HOLD_MS);
        }
      } else if (type === 'speech.start' || type === 'speech.stop') {
        this.parts.speech.hidden = type === 'speech.stop';
      }
    }

    showRegions(regions) {
      const pct = (v) => (Math.max(0, Math.min(1, v)) * 100).toFixed(2) + '%';
      this.parts.regions.replaceChildren(...regions.map((r) => {
        const box = el('div', {className: 'region'});
        Object.assign(box.style, {left: pct(r.x), top: pct(r.y), width: pct(r.w), height: pct(r.h)});
        return box;
      }));
    }

    // -- stills ------------------------------------------------------------------------------------------

    // The width to ask for: what the tile shows in device pixels, in steps of 160 so tiles of one size share
    // the server's cached JPEG.
    stillWidth() {
      const css = this.parts.frame.clientWidth || 320;
      return Math.min(1920, Math.ceil(css * (window.devicePixelRatio || 1) / 160) * 160);
    }

    // Fetch the still (its token in a header; a 304 is served from the browser's cache) and show it.
    async refreshStill(maxAge) {
      if (this.stillLoading || !this.online || this.playing) return;
      this.stillLoading = true;
      const path = '/api/sources/' + encodeURIComponent(this.id) + '/snapshot.jpg?w=' + this.stillWidth() +
                   '&maxAge=' + (maxAge || 0);
      try {
        const resp = await Icey.api(path, {cache: 'no-cache'}, this.box.origin, () => this.box.poll());
        const etag = resp.headers.get('ETag');
        if (resp.ok && etag && etag === this.stillTag) {
          this.stillFailed = '';  // the same picture (a 304 the browser turned into its cached 200)
        } else if (resp.ok) {
          const blob = await resp.blob();
          const taken = resp.headers.get('X-Icey-Frame-Time') || resp.headers.get('Last-Modified');
          this.stillAt = taken ? Date.parse(taken) : Date.now();
          this.stillTag = etag;
          const url = URL.createObjectURL(blob);
          const old = this.stillUrl;
          this.stillUrl = url;
          this.parts.still.src = url;
          if (old) setTimeout(() => URL.revokeObjectURL(old), 1000);  // after the new one is decoded
          this.stillFailed = '';
        } else if (resp.status !== 503 && resp.status !== 401) {  // 503: offline, which the state shows
          this.stillFailed = 'No picture: ' + (await Icey.describe(resp)).split('\n')[0];
        }
      } catch (e) {
        this.stillFailed = 'No picture: ' + (e.message || e);
      } finally {
        this.stillLoading = false;
        this.showState();
      }
    }

    // -- live --------------------------------------------------------------------------------------------

    startLive(iceServers) {
      if (this.live) return;
      if (!window.RTCPeerConnection) {
        this.liveProblem = 'No WebRTC in this browser: stills only';
        this.retryAt = Infinity;
        this.showState();
        return;
      }
      this.liveSince = Date.now();
      const onPlaying = () => {
        this.playing = true;
        this.retryMs = RETRY_FIRST_MS;
        this.liveProblem = '';
        this.showState();
      };
      const onFail = (message) => {
        this.live = null;
        this.playing = false;
        this.retryAt = Date.now() + this.retryMs;
        this.liveProblem = 'Live video failed: ' + message.split('\n')[0];
        this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
        this.showState();
        this.refreshStill();
        this.hooks.liveEnded(this);
      };
      const viewer = this.live = new Icey.Viewer({sourceId: this.id, video: this.parts.video, origin: this.box.origin,
                                                  onPlaying, onFail, onToken: () => this.box.poll()});
      this.showState();
      iceServers.then((servers) => { if (this.live === viewer) viewer.start(servers); });
    }

    stopLive(keepalive) {
      if (!this.live) return;
      this.live.stop(!!keepalive);
      this.live = null;
      this.playing = false;
      this.showState();
      if (this.onScreen && !keepalive) this.refreshStill();
    }
  }

  return {Tile};
})();
