// Ferry dashboard: keeps a page live. The server sends "change" events with
// the IDs of promotions that changed; the page fetches its own content again
// (?partial=1, rendered by the server) and swaps it in. A page following a
// running promotion also receives its step output as "log" events.
(function () {
  'use strict';
  var main = document.getElementById('main');
  if (!main || !window.EventSource || !window.fetch) { return; }
  var watch = main.getAttribute('data-watch') || '';
  var follow = main.getAttribute('data-follow') || '';
  var live = document.getElementById('live');
  var timer = null, busyRetry = null, fetching = false, again = false;

  function announce(text) {
    if (!live) { return; }
    live.textContent = text;
    live.classList.add('show');
    setTimeout(function () { live.classList.remove('show'); }, 2500);
  }

  // A person typing in a form keeps the page as it is until they leave it.
  function busy() {
    var a = document.activeElement;
    if (!a || !main.contains(a)) { return false; }
    if (a.tagName === 'TEXTAREA' || (a.tagName === 'INPUT' && a.type !== 'hidden' && a.type !== 'submit')) { return true; }
    var open = main.querySelector('details.action[open] input:not([type=hidden])');
    return !!(open && open.value);
  }

  function refresh() {
    if (busy()) {
      if (!busyRetry) { busyRetry = setTimeout(function () { busyRetry = null; refresh(); }, 1500); }
      return;
    }
    if (fetching) { again = true; return; }
    fetching = true;
    var url = new URL(window.location.href);
    url.searchParams.set('partial', '1');
    url.hash = '';
    fetch(url.toString(), { credentials: 'same-origin', headers: { 'Accept': 'text/html' } })
      .then(function (r) {
        if (r.status === 401) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null) { return; }
        var openIds = [];
        main.querySelectorAll('details[open]').forEach(function (d) {
          var key = d.querySelector('[id]');
          if (key) { openIds.push(key.id); }
        });
        var focusId = document.activeElement && main.contains(document.activeElement) ? document.activeElement.id : '';
        main.innerHTML = html;
        openIds.forEach(function (id) {
          var el = document.getElementById(id);
          var d = el && el.closest('details');
          if (d) { d.open = true; }
        });
        if (focusId) { var f = document.getElementById(focusId); if (f) { f.focus(); } }
        var state = main.querySelector('[data-testid=promotion-state] .badge');
        announce(state ? 'Updated: ' + state.textContent.trim() : 'Updated');
        main.setAttribute('data-updated', String(Date.now()));
      })
      .catch(function () { /* the next event retries */ })
      .then(function () {
        fetching = false;
        if (again) { again = false; schedule(); }
      });
  }

  function schedule() {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(function () { timer = null; refresh(); }, 150);
  }

  if (!watch && !follow) { return; }
  var src = '/events';
  if (follow) {
    var marker = main.querySelector('[data-log-from]');
    src += '?follow=' + encodeURIComponent(follow) + '&from=' + encodeURIComponent(marker ? marker.getAttribute('data-log-from') : '0');
  }
  var es = new EventSource(src);
  es.addEventListener('change', function (e) {
    var ids = String(e.data).split(',');
    if (watch === '*' || ids.indexOf(watch) >= 0) { schedule(); }
  });
  es.addEventListener('log', function (e) {
    var d;
    try { d = JSON.parse(e.data); } catch (err) { return; }
    var pre = document.getElementById(d.step);
    if (!pre) { schedule(); return; }
    var upto = parseInt(pre.getAttribute('data-upto') || '0', 10);
    if (d.n <= upto) { return; }
    var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.appendChild(document.createTextNode(d.text));
    pre.setAttribute('data-upto', String(d.n));
    if (atEnd) { pre.scrollTop = pre.scrollHeight; }
  });
  window.addEventListener('pagehide', function () { es.close(); });
}());
