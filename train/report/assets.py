"""The report's stylesheet and script, inlined into the page (no server, no CDN: it opens from the file system).

The script filters episodes and the episode table by correctness, finish reason, task type and reward range. The
filter state lives in the URL hash (`#correct=no&finish=answered,stopped&type=ocr&rmin=0&rmax=1&q=t0`), so a
filtered view can be bookmarked, and a test can open the page already filtered. It writes the number shown into
`#shown-count` and marks hidden rows and episodes with the `hidden` attribute.
"""

from __future__ import annotations

CSS = """
:root { --ok: #1a7f37; --bad: #cf222e; --unk: #6e7781; --line: #d0d7de; --bg2: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1f2328; }
header { padding: 12px 20px; background: #24292f; color: #fff; }
header h1 { margin: 0; font-size: 18px; }
header .sub { color: #c9d1d9; font-size: 12px; }
main { padding: 12px 20px; }
h2 { border-bottom: 1px solid var(--line); padding-bottom: 4px; margin-top: 28px; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg2); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: var(--bg2); padding: 6px 8px; overflow-x: auto; white-space: pre-wrap; word-break: break-word;
      margin: 4px 0; font-size: 12.5px; }
pre.err { background: #ffebe9; }
.yes { color: var(--ok); font-weight: 600; } .no { color: var(--bad); font-weight: 600; }
.unknown { color: var(--unk); }
.badge { display: inline-block; padding: 0 6px; border-radius: 10px; font-size: 12px; border: 1px solid var(--line); }
.status-ok { background: #dafbe1; } .status-error, .status-timeout, .status-memory, .status-crashed,
.status-output_limit, .status-killed { background: #ffebe9; }
#filters { position: sticky; top: 0; background: #fff; border-bottom: 1px solid var(--line); padding: 8px 0;
           z-index: 2; }
#filters fieldset { display: inline-block; border: 1px solid var(--line); margin: 2px 6px 2px 0; padding: 2px 8px; }
#filters legend { font-size: 12px; color: var(--unk); }
#filters input[type=number] { width: 70px; }
.ep { border: 1px solid var(--line); border-radius: 6px; margin: 14px 0; padding: 8px 12px; }
.ep > h3 { margin: 0 0 6px 0; font-size: 15px; }
.turn { border-left: 3px solid var(--line); padding-left: 10px; margin: 8px 0; }
.turn.assistant { border-color: #0969da; } .turn.observation { border-color: #8250df; }
.role { font-size: 12px; color: var(--unk); text-transform: uppercase; letter-spacing: .04em; }
.images { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
figure { margin: 0; } figcaption { font-size: 12px; color: var(--unk); max-width: 360px; }
svg.im { max-width: 420px; height: auto; border: 1px solid var(--line); background: #fff; }
img.out { max-width: 240px; max-height: 240px; border: 1px solid var(--line); image-rendering: pixelated; }
.plots img { max-width: 48%; border: 1px solid var(--line); margin: 4px; }
[hidden] { display: none !important; }
.hl { background: #f6f8fa; }
"""

JS = r"""
(function () {
  const $ = (s, r) => Array.from((r || document).querySelectorAll(s));
  function state() {
    const checked = name => $('input[name=' + name + ']:checked').map(e => e.value);
    return {
      correct: checked('correct'), finish: checked('finish'), type: checked('type'),
      rmin: document.getElementById('rmin').value, rmax: document.getElementById('rmax').value,
      q: document.getElementById('q').value.trim().toLowerCase()
    };
  }
  function matches(el, s) {
    const d = el.dataset;
    if (!s.correct.includes(d.correct)) return false;
    if (!s.finish.includes(d.finish)) return false;
    if (!s.type.includes(d.type)) return false;
    const r = d.reward === '' ? null : parseFloat(d.reward);
    if (s.rmin !== '' && (r === null || r < parseFloat(s.rmin))) return false;
    if (s.rmax !== '' && (r === null || r > parseFloat(s.rmax))) return false;
    if (s.q && !(d.search || '').includes(s.q)) return false;
    return true;
  }
  function apply(writeHash) {
    const s = state();
    let shown = 0;
    $('.ep').forEach(el => { const ok = matches(el, s); el.hidden = !ok; if (ok) shown += 1; });
    $('tr.eprow').forEach(el => { el.hidden = !matches(el, s); });
    document.getElementById('shown-count').textContent = String(shown);
    if (writeHash) {
      const parts = [];
      ['correct', 'finish', 'type'].forEach(k => {
        if ($('input[name=' + k + ']:not(:checked)').length) parts.push(k + '=' + s[k].join(','));
      });
      if (s.rmin !== '') parts.push('rmin=' + s.rmin);
      if (s.rmax !== '') parts.push('rmax=' + s.rmax);
      if (s.q) parts.push('q=' + encodeURIComponent(s.q));
      history.replaceState(null, '', parts.length ? '#' + parts.join('&') : location.pathname);
    }
  }
  function fromHash() {
    const h = decodeURIComponent(location.hash.replace(/^#/, ''));
    if (!h) return;
    h.split('&').forEach(kv => {
      const i = kv.indexOf('=');
      if (i < 0) return;
      const k = kv.slice(0, i), v = kv.slice(i + 1);
      if (['correct', 'finish', 'type'].includes(k)) {
        const want = v.split(',');
        $('input[name=' + k + ']').forEach(e => { e.checked = want.includes(e.value); });
      } else if (k === 'rmin' || k === 'rmax' || k === 'q') {
        document.getElementById(k).value = v;
      }
    });
  }
  document.addEventListener('DOMContentLoaded', function () {
    fromHash();
    $('#filters input').forEach(e => e.addEventListener('input', () => apply(true)));
    document.getElementById('reset').addEventListener('click', () => {
      $('#filters input[type=checkbox]').forEach(e => { e.checked = true; });
      $('#filters input[type=number], #filters input[type=search]').forEach(e => { e.value = ''; });
      apply(true);
    });
    apply(false);
    document.body.dataset.ready = '1';
  });
})();
"""
