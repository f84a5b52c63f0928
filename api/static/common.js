// Shared by the viewer pages: the token from ?token= and API calls that always carry it.
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

  return {token, headers, api, describe, getJSON, link, el};
})();
