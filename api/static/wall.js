// The camera wall at /: one tile per source (wall_tile.js) of this server and of every ?box=, in configured
// order or as ?src= orders them, laid out to fill the screen. It polls each box's /api/status and follows its
// events, and decides which tiles are live: at most ?maxLive= (default 4), on click, on motion/speech
// (?live=motion) or always (?live=always); the oldest idle live tile goes back to stills when another needs
// the slot. A hidden tab or an off-screen tile holds no WHEP session and fetches no stills.
'use strict';
(() => {
  const {el} = Icey;
  const params = new URLSearchParams(location.search);
  const MODES = ['click', 'motion', 'always'];
  const mode = MODES.includes(params.get('live')) ? params.get('live') : 'click';
  const maxLive = intParam('maxLive', 4, 0, 64);
  const cols = intParam('cols', 0, 1, 16);
  const stillSec = intParam('every', 5, 1, 3600);
  const picked = params.getAll('src').flatMap((s) => s.split(',')).filter(Boolean);
  const LINGER_MS = 10000;   // a motion-started tile stays live this long after the motion/speech ends
  const POLL_MS = 1000, HIDDEN_POLL_MS = 10000;
  const wallEl = document.getElementById('wall');
  const errorEl = document.getElementById('error');
  const summaryEl = document.getElementById('summary');
  const announceEl = document.getElementById('announce');
  const tiles = new Map();  // key -> Tile, in wall order

  function intParam(name, fallback, low, high) {
    const v = parseInt(params.get(name), 10);
    return Number.isFinite(v) && v >= low && v <= high ? v : fallback;
  }

  // -- boxes: this server and the ?box= ones ---------------------------------------------------------------

  class Box {
    constructor(origin) {
      this.origin = origin;  // '' for this server
      this.label = origin ? new URL(origin).host : '';
      this.items = null;     // its sources, from the last /api/status
      this.problem = '';
      this.timer = null;
      this.ice = null;       // Promise of its ICE servers, asked once per page
      this.events = null;
      this.busy = false;     // a poll is in flight
      this.again = false;    // and another was asked for meanwhile
      this.noteEl = el('p', {className: 'box-note', hidden: true});
    }

    iceServers() {
      if (!this.ice) this.ice = Icey.iceServers(this.origin);
      return this.ice;
    }

    // Now, then every POLL_MS (slower while the tab is hidden). A call while one is in flight makes it
    // run once more right after, so callers never stack polls (or timers).
    async poll() {
      if (this.busy) { this.again = true; return; }
      this.busy = true;
      clearTimeout(this.timer);
      try {
        const resp = await Icey.api('/api/status', undefined, this.origin, () => this.poll());
        if (resp.status === 401) {
          this.problem = (this.label || 'This server') + ' needs its access token: enter it above.';
        } else if (!resp.ok) {
          this.problem = (this.label || 'This server') + ': ' + await Icey.describe(resp);
        } else {
          this.items = (await resp.json()).sources || [];
          this.problem = '';
          if (!this.events) this.follow();
        }
      } catch (e) {
        this.problem = (this.label || 'This server') + ' cannot be reached: ' + (e.message || e) +
          (this.origin ? ' (is this page\'s origin in its auth.allowedOrigins?)' : '');
      }
      this.busy = false;
      this.noteEl.textContent = this.problem;
      this.noteEl.hidden = !this.problem;
      render();
      if (this.again) {
        this.again = false;
        this.poll();
      } else {
        this.timer = setTimeout(() => this.poll(), document.hidden ? HIDDEN_POLL_MS : POLL_MS);
      }
    }

    // Its events, as they happen: a state change shows at once, not at the next poll.
    follow() {
      this.events = Icey.events(this.origin, {}, (type, ev) => {
        const tile = tiles.get(this.origin + '|' + ev.sourceId);
        if (!tile) return;
        tile.event(type, ev);
        if (type.startsWith('motion.') || type.startsWith('speech.')) {
          activity(tile, type.split('.')[0], type === 'motion.start' || type === 'speech.start');
        } else if (type.startsWith('source.') || type.startsWith('session.')) setTimeout(() => this.poll(), 50);
      });
    }
  }

  const boxes = [new Box('')];
  for (const raw of params.getAll('box')) {
    try {
      const origin = new URL(raw).origin;
      if (origin !== location.origin && !boxes.some((b) => b.origin === origin)) boxes.push(new Box(origin));
    } catch (e) {
      errorEl.textContent = 'Ignoring ?box=' + raw + ': not a URL like https://host:4500';
    }
  }
  document.getElementById('boxes').append(...boxes.map((b) => b.noteEl));

  // -- tiles ---------------------------------------------------------------------------------------------

  const hooks = {
    toggleLive(tile) {
      tile.liveProblem = '';
      tile.retryAt = 0;
      if (tile.pinnedAt || (tile.live && mode !== 'click')) {
        tile.pinnedAt = 0;
        if (mode === 'always' || tile.activeUntil > Date.now()) tile.dismissedAt = Date.now();
      } else if (tile.playable) {
        tile.pinnedAt = Date.now();
        tile.dismissedAt = 0;
      }
      rebalance();
    },
    open(tile) { location.href = tile.sourceUrl; },
    changed(tile, text) { announceEl.textContent = text; },
    liveEnded() { rebalance(); },
  };

  // The sources to show, in order: every box's configured order, or ?src= order (an id on several boxes
  // shows once per box).
  function wanted() {
    const all = [];
    for (const box of boxes) for (const item of box.items || []) all.push({box, item});
    if (!picked.length) return all;
    return picked.flatMap((id) => all.filter((e) => e.item.id === id));
  }

  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      const tile = entry.target.tile;
      tile.onScreen = entry.isIntersecting;
      if (tile.onScreen) tile.refreshStill(stillSec / 2);
    }
    rebalance();
  }, {threshold: 0.1});

  function render() {
    const list = wanted();
    const keys = new Set(list.map((e) => e.box.origin + '|' + e.item.id));
    for (const [key, tile] of tiles) {
      if (keys.has(key)) continue;
      tile.stopLive();
      observer.unobserve(tile.node);
      tile.node.remove();
      tiles.delete(key);
    }
    let changed = false;
    list.forEach(({box, item}, i) => {
      const key = box.origin + '|' + item.id;
      let tile = tiles.get(key);
      if (tile) {
        tile.update(item);
      } else {
        tile = new WallTile.Tile(box, item, hooks);
        tiles.set(key, tile);
        observer.observe(tile.node);
        changed = true;
      }
      if (wallEl.children[i] !== tile.node) wallEl.insertBefore(tile.node, wallEl.children[i] || null);
    });
    if (changed) layout();
    summary();
    const loading = boxes.some((b) => b.items === null && !b.problem);
    if (!list.length && !loading) {
      wallEl.replaceChildren(el('p', {className: 'empty', textContent: boxes.every((b) => b.problem) ? '' :
        picked.length ? 'None of the sources asked for (?src=' + picked.join(', ') + ') exists.'
                      : 'No sources configured.'}));
    } else {
      const empty = wallEl.querySelector('.empty');
      if (empty) empty.remove();
    }
    rebalance();
  }

  function summary() {
    const all = [...tiles.values()];
    const online = all.filter((t) => t.online).length, live = all.filter((t) => t.playing).length;
    summaryEl.textContent = all.length + ' sources · ' + online + ' online · ' + live + ' live (max ' + maxLive + ')';
  }

  // -- layout: the column count that shows every tile largest within the window ---------------------------

  function layout() {
    const n = tiles.size;
    if (!n) return;
    if (cols) {
      wallEl.style.gridTemplateColumns = 'repeat(' + cols + ', minmax(0, 1fr))';
      return;
    }
    const gap = parseFloat(getComputedStyle(wallEl).columnGap) || 12;
    wallEl.style.maxWidth = '';
    const width = wallEl.clientWidth - 1;
    const height = window.innerHeight - wallEl.getBoundingClientRect().top - gap - window.scrollY;
    const aspect = 16 / 9;
    let best = 1, bestWidth = 0;
    for (let c = 1; c <= n; c++) {
      const rows = Math.ceil(n / c);
      const w = Math.min((width - gap * (c - 1)) / c, ((height - gap * (rows - 1)) / rows) * aspect);
      if (w > bestWidth + 1) { bestWidth = w; best = c; }
    }
    const tileMin = Math.max(260, Math.floor(bestWidth));
    wallEl.style.gridTemplateColumns = 'repeat(auto-fill, minmax(min(100%, ' + tileMin + 'px), 1fr))';
    wallEl.style.maxWidth = tileMin > 260 ? Math.ceil(best * tileMin + (best - 1) * gap) + 'px' : '';
  }

  // -- live: which tiles get the maxLive slots ------------------------------------------------------------

  // Motion or speech started (`on`) or ended at `tile`: active while either lasts, then lingering.
  function activity(tile, kind, on) {
    if (on) tile.activeKinds.add(kind); else tile.activeKinds.delete(kind);
    if (tile.activeKinds.size) tile.activeUntil = Infinity;
    else if (tile.activeUntil === Infinity) tile.activeUntil = Date.now() + LINGER_MS;
    rebalance();
  }

  // Why `tile` should be live, as a sort key (smaller first), or null when it should show stills:
  // a click (newest first), then motion/speech in progress, then idle ones (lingering after motion, or
  // ?live=always), live ones before waiting ones so a slot is not taken from a tile that has it.
  function claim(tile, now) {
    if (!tile.playable || !tile.online || !tile.onScreen || document.hidden || now < tile.retryAt) return null;
    if (tile.pinnedAt) return [0, -tile.pinnedAt];
    if (tile.dismissedAt && (mode === 'always' || tile.activeUntil > now)) return null;  // the operator said no
    const held = tile.live ? 0 : 1, age = tile.live ? -tile.liveSince : tile.activeUntil;
    if (mode === 'motion' && tile.activeUntil === Infinity) return [1, held, age];
    if (mode === 'motion' && tile.activeUntil > now) return [2, held, age];
    if (mode === 'always') return [2, held, age];
    return null;
  }

  function compare(a, b) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return (a[i] || 0) - (b[i] || 0);
    return 0;
  }

  let rebalancing = false;
  function rebalance() {
    if (rebalancing) return;
    rebalancing = true;
    try {
      const now = Date.now();
      const ranked = [];
      for (const tile of tiles.values()) {
        if (tile.activeUntil !== Infinity && tile.activeUntil <= now) tile.activeUntil = 0;
        if (tile.dismissedAt && mode === 'motion' && !tile.activeUntil) tile.dismissedAt = 0;
        const key = claim(tile, now);
        if (key) {
          ranked.push({tile, key});
        } else {
          tile.stopLive();
          if (tile.liveProblem && now >= tile.retryAt) tile.liveProblem = '';  // nothing to retry any more
        }
      }
      ranked.sort((a, b) => compare(a.key, b.key));
      ranked.forEach(({tile}, i) => {
        if (i < maxLive) {
          tile.startLive(tile.box.iceServers());
        } else {
          if (tile.pinnedAt && tile.live) tile.pinnedAt = 0;  // a newer click took its slot
          tile.stopLive();
        }
      });
      summary();
    } finally {
      rebalancing = false;
    }
  }

  // -- stills, visibility, keys ---------------------------------------------------------------------------

  setInterval(() => {
    if (document.hidden) return;
    for (const tile of tiles.values()) if (tile.onScreen && !tile.playing) tile.refreshStill(stillSec / 2);
  }, stillSec * 1000);

  setInterval(() => {  // countdowns in the notices, lingering motion running out
    for (const tile of tiles.values()) if (!tile.online || tile.liveProblem || tile.box.problem) tile.showState();
    rebalance();
  }, 1000);

  document.addEventListener('visibilitychange', () => {
    if (document.hidden) {
      for (const tile of tiles.values()) tile.stopLive(true);
    } else {
      for (const box of boxes) box.poll();
      for (const tile of tiles.values()) if (tile.onScreen) tile.refreshStill(stillSec / 2);
      rebalance();
    }
  });
  window.addEventListener('pagehide', () => { for (const tile of tiles.values()) tile.stopLive(true); });
  window.addEventListener('resize', layout);

  // The mode links keep every other parameter of the address.
  for (const link of document.querySelectorAll('[data-live]')) {
    const next = new URLSearchParams(location.search);
    next.set('live', link.dataset.live);
    link.href = '?' + next;
    if (link.dataset.live === mode) link.setAttribute('aria-current', 'true');
  }

  // Test hook (and handy in the console): what each tile shows.
  window.probe = () => [...tiles.values()].map((t) => ({
    id: t.id, box: t.box.label, state: t.parts.state.textContent, live: !!t.live, playing: t.playing,
    onScreen: t.onScreen, stillWidth: t.parts.still.naturalWidth, videoWidth: t.parts.video.videoWidth,
    notice: t.parts.notice.hidden ? '' : t.parts.notice.textContent,
  }));

  for (const box of boxes) box.poll();
})();
