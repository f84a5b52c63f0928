// The source list: GET /api/sources every 2 s, one row per source with its Watch and/or Publish link.
'use strict';
(() => {
  const {el} = Icey;
  const body = document.getElementById('sources');
  const error = document.getElementById('error');
  const updated = document.getElementById('updated');

  function videoText(v) {
    if (!v) return '—';
    const fps = v.fps ? ' @ ' + Math.round(v.fps) + ' fps' : '';
    return v.codec.toUpperCase() + ' ' + v.width + '×' + v.height + fps;
  }

  function row(item) {
    const media = item.media || {};
    const audio = media.audio ? media.audio.codec + ' ' + media.audio.channels + 'ch' : '—';
    // Watch over WHEP (not a record source: nothing to watch there); Publish over WHIP (record and relay).
    const links = [];
    if (item.mode !== 'record') {
      links.push(el('a', {href: Icey.link('/watch/' + encodeURIComponent(item.id)), textContent: 'Watch'}));
    }
    if (item.mode === 'record' || item.mode === 'relay') {
      if (links.length) links.push(' · ');
      links.push(el('a', {href: Icey.link('/publish/' + encodeURIComponent(item.id)), textContent: 'Publish'}));
    }
    return el('tr', {id: 'source-' + item.id},
      el('td', {}, el('b', {textContent: item.id}), ' ', el('span', {className: 'dim', textContent: item.mode})),
      el('td', {className: 'state ' + item.state, textContent: item.state,
                title: item.lastError || ''}),
      el('td', {textContent: videoText(media.video)}),
      el('td', {textContent: audio}),
      el('td', {className: 'viewers', textContent: String((item.sessions || {}).active || 0)}),
      el('td', {}, ...links));
  }

  async function refresh() {
    try {
      const doc = await Icey.getJSON('/api/sources');
      body.replaceChildren(...doc.items.map(row));
      if (!doc.items.length) body.replaceChildren(el('tr', {}, el('td', {colSpan: 6, className: 'dim',
                                                                          textContent: 'No sources configured.'})));
      error.textContent = '';
      updated.textContent = 'Updated ' + new Date().toLocaleTimeString();
    } catch (e) {
      error.textContent = 'Cannot list the sources: ' + e.message;
    }
  }

  refresh();
  setInterval(refresh, 2000);
})();
