// The web page at `/`. It shows the live progress of one TrainJob (progress bar, ETA, step
// and epoch, latest metrics, charts of loss and evaluation metrics) or of every TrainJob in
// a namespace. Everything is inline, with no external scripts, styles or fonts, and a
// per-response nonce lets the Content-Security-Policy allow only this script and style.
//
// The page reads `namespace`, `name` and `token` from the URL fragment
// (`/#namespace=team-a&name=llm-ft&token=…`) or from its form; `namespace` and `name` may
// also come from the query string. The token is never read from the query string, because
// a fragment never reaches the server or its logs. The token goes in an Authorization header for the JSON API and in
// a `base64url.bearer.authorization.k8s.io.<token>` WebSocket subprotocol for the stream.

import { randomBytes } from 'node:crypto';
import { JOB_API_PREFIX, WATCH_PATH } from '../shared/stream-protocol.ts';
import { BEARER_PROTOCOL_PREFIX, VIEWER_PROTOCOL } from '../shared/bearer-token.ts';

/** Returns the page and the Content-Security-Policy header that goes with it. */
export function renderWebPage(): { html: string; contentSecurityPolicy: string } {
  const nonce = randomBytes(16).toString('base64');
  const contentSecurityPolicy = [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "connect-src 'self'",
    "img-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { html: PAGE.replaceAll('{{nonce}}', nonce), contentSecurityPolicy };
}

const CONSTANTS = JSON.stringify({
  watchPath: WATCH_PATH,
  apiPrefix: JOB_API_PREFIX,
  protocol: VIEWER_PROTOCOL,
  bearerPrefix: BEARER_PROTOCOL_PREFIX,
});

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 960px; padding: 16px; color: #1d232a; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin: 20px 0 8px; }
form { display: flex; gap: 8px; flex-wrap: wrap; align-items: end; }
label { display: flex; flex-direction: column; font-size: 12px; color: #555; }
input { font: inherit; padding: 4px 6px; }
.bar { background: #e5e8eb; border-radius: 4px; height: 18px; overflow: hidden; }
.fill { background: #2f6fde; height: 100%; transition: width .4s; }
.fill.Complete { background: #2e9d4f; } .fill.Failed { background: #c93a3a; }
.facts { display: flex; gap: 24px; flex-wrap: wrap; margin: 8px 0; }
.facts div span { display: block; font-size: 12px; color: #555; }
table { border-collapse: collapse; } td, th { padding: 2px 12px 2px 0; text-align: left; }
.jobs tr { cursor: pointer; } .jobs td.bar-cell { width: 240px; }
#status { color: #555; font-size: 12px; } .error { color: #c93a3a !important; }
svg { background: #fafbfc; border: 1px solid #e5e8eb; }
.legend span { margin-right: 12px; font-size: 12px; }
`;

// Runs in the browser. Kept free of template placeholders except the constants object.
const SCRIPT = `
const C = ${CONSTANTS};
const $ = (id) => document.getElementById(id);
const COLORS = ['#2f6fde', '#c93a3a', '#2e9d4f', '#b8741a', '#7a44c2', '#1a9bb8'];
let socket, retryMs = 1000, jobs = new Map(), history = [], params = readParams();

function readParams() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const query = new URLSearchParams(location.search);
  const get = (key) => hash.get(key) || query.get(key) || '';
  return { namespace: get('namespace') || 'default', name: get('name'), token: hash.get('token') || '' };
}

function setStatus(text, isError) {
  $('status').textContent = text;
  $('status').className = isError ? 'error' : '';
}

function base64url(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
}

async function loadHistory() {
  history = [];
  if (!params.name) return;
  const url = C.apiPrefix + encodeURIComponent(params.namespace) + '/trainjobs/' + encodeURIComponent(params.name);
  const headers = params.token ? { Authorization: 'Bearer ' + params.token } : {};
  const response = await fetch(url, { headers });
  if (response.ok) history = (await response.json()).history;
}

function connect() {
  if (socket) socket.close();
  const query = new URLSearchParams({ namespace: params.namespace });
  if (params.name) query.set('name', params.name);
  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
  const protocols = [C.protocol];
  if (params.token) protocols.push(C.bearerPrefix + base64url(params.token));
  socket = new WebSocket(scheme + location.host + C.watchPath + '?' + query, protocols);
  socket.onopen = () => { retryMs = 1000; setStatus('connected'); };
  socket.onmessage = (event) => onMessage(JSON.parse(event.data));
  socket.onclose = (event) => {
    if (event.code === 4401 || event.code === 4403 || event.code === 1008) {
      setStatus('access denied: ' + (event.reason || 'check the token'), true);
      return;
    }
    setStatus('disconnected, retrying in ' + Math.round(retryMs / 1000) + ' s', true);
    setTimeout(start, retryMs);
    retryMs = Math.min(retryMs * 2, 30000);
  };
}

function onMessage(message) {
  if (message.type === 'snapshot') {
    jobs = new Map(message.jobs.map((job) => [job.name, job]));
  } else if (message.type === 'update') {
    jobs.set(message.job.name, message.job);
    const status = message.job.status;
    if (params.name && status && (!history.length || history[history.length - 1].time !== status.lastUpdatedTime)) {
      history.push({ time: status.lastUpdatedTime, status });
      if (history.length > 5000) history.splice(0, history.length - 5000);
    }
  } else if (message.type === 'removed') {
    jobs.delete(message.name);
  }
  render();
}

function el(tag, attributes, children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    // The policy blocks style attributes, but not styles set through the CSSOM.
    if (key === 'style') node.style.cssText = value;
    else node.setAttribute(key, value);
  }
  for (const child of children || []) node.append(child);
  return node;
}

function bar(job) {
  const percent = (job.status && job.status.progressPercentage) || 0;
  const fill = el('div', { class: 'fill ' + job.phase, style: 'width:' + percent + '%' });
  return el('div', { class: 'bar', title: percent + '%' }, [fill]);
}

function fmt(value) {
  if (value === undefined || value === null) return '–';
  return typeof value === 'number' && !Number.isInteger(value) ? String(Number(value.toPrecision(5))) : String(value);
}

function render() {
  const main = $('main');
  main.replaceChildren();
  if (!params.name) return renderList(main);
  const job = jobs.get(params.name);
  if (!job) return main.append(el('p', {}, ['No progress reported yet for ' + params.namespace + '/' + params.name + '.']));
  renderJob(main, job);
}

function renderList(main) {
  const rows = [...jobs.values()].sort((a, b) => a.name.localeCompare(b.name)).map((job) => {
    const s = job.status || {};
    const row = el('tr', {}, [el('td', {}, [job.name]), el('td', {}, [job.phase]), el('td', { class: 'bar-cell' }, [bar(job)]),
      el('td', {}, [fmt(s.progressPercentage) + '%']), el('td', {}, [s.estimatedRemainingTimeSummary || '']),
      el('td', {}, ['loss ' + fmt(s.trainMetrics && s.trainMetrics.loss)])]);
    row.onclick = () => { location.hash = new URLSearchParams({ ...params, name: job.name }).toString(); };
    return row;
  });
  main.append(el('h2', {}, ['TrainJobs in ' + params.namespace]), rows.length ? el('table', { class: 'jobs' }, rows) : el('p', {}, ['No TrainJob reports progress.']));
}

function renderJob(main, job) {
  const s = job.status || {};
  const fact = (label, value) => el('div', {}, [el('span', {}, [label]), String(value)]);
  const step = s.currentStep === undefined ? '–' : s.currentStep + (s.totalSteps ? ' / ' + s.totalSteps : '');
  const epoch = s.currentEpoch === undefined ? '–' : fmt(s.currentEpoch) + (s.totalEpochs ? ' / ' + s.totalEpochs : '');
  main.append(el('h2', {}, [job.namespace + '/' + job.name + ' · ' + job.phase + (job.final ? ' (final)' : '')]), bar(job),
    el('div', { class: 'facts' }, [fact('progress', fmt(s.progressPercentage) + '%'), fact('step', step), fact('epoch', epoch),
      fact('remaining', s.estimatedRemainingTimeSummary || '–'), fact('updated', s.lastUpdatedTime || '–')]));
  main.append(metricsTable('Training metrics', s.trainMetrics), metricsTable('Evaluation metrics', s.evalMetrics));
  const loss = ['loss', 'eval_loss'];
  main.append(chart('Loss', loss), chart('Evaluation metrics', evalNames().filter((name) => !loss.includes(name))));
}

function metricsTable(title, metrics) {
  const rows = Object.entries(metrics || {}).map(([name, value]) => el('tr', {}, [el('td', {}, [name]), el('td', {}, [fmt(value)])]));
  return el('div', {}, [el('h2', {}, [title]), rows.length ? el('table', {}, rows) : el('p', {}, ['none'])]);
}

function metricValue(status, name) {
  const raw = (status.trainMetrics && status.trainMetrics[name]) ?? (status.evalMetrics && status.evalMetrics[name]);
  const value = typeof raw === 'string' ? Number(raw) : raw;
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function evalNames() {
  const names = new Set();
  for (const entry of history) for (const name of Object.keys(entry.status.evalMetrics || {})) names.add(name);
  return [...names].sort().slice(0, COLORS.length);
}

function chart(title, names) {
  const series = names.map((name) => ({ name, points: history.map((e) => [Date.parse(e.time), metricValue(e.status, name)]).filter((p) => p[1] !== undefined) }))
    .filter((s) => s.points.length > 0);
  if (!series.length) return el('div');
  const all = series.flatMap((s) => s.points);
  const [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  const [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  const W = 900, H = 220, P = 40;
  const sx = (x) => P + ((x - x0) / (x1 - x0 || 1)) * (W - 2 * P);
  const sy = (y) => H - P + -((y - y0) / (y1 - y0 || 1)) * (H - 2 * P);
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
  svg.setAttribute('width', '100%');
  const text = (x, y, value) => { const t = document.createElementNS(ns, 'text'); t.setAttribute('x', x); t.setAttribute('y', y); t.setAttribute('font-size', '11'); t.textContent = value; svg.append(t); };
  text(4, P, fmt(y1)); text(4, H - P, fmt(y0));
  text(P, H - 8, new Date(x0).toLocaleTimeString()); text(W - P - 60, H - 8, new Date(x1).toLocaleTimeString());
  const legend = [];
  series.forEach((s, i) => {
    const line = document.createElementNS(ns, 'polyline');
    line.setAttribute('points', s.points.map((p) => sx(p[0]).toFixed(1) + ',' + sy(p[1]).toFixed(1)).join(' '));
    line.setAttribute('fill', 'none');
    line.setAttribute('stroke', COLORS[i % COLORS.length]);
    line.setAttribute('stroke-width', '2');
    svg.append(line);
    legend.push(el('span', { style: 'color:' + COLORS[i % COLORS.length] }, ['■ ' + s.name]));
  });
  return el('div', {}, [el('h2', {}, [title]), svg, el('div', { class: 'legend' }, legend)]);
}

async function start() {
  $('namespace').value = params.namespace; $('name').value = params.name; $('token').value = params.token;
  try { await loadHistory(); } catch (error) { setStatus('history unavailable: ' + error.message, true); }
  connect();
}

$('form').onsubmit = (event) => {
  event.preventDefault();
  const next = { namespace: $('namespace').value.trim() || 'default', name: $('name').value.trim(), token: $('token').value.trim() };
  const hash = new URLSearchParams(Object.entries(next).filter((entry) => entry[1])).toString();
  if (location.hash.slice(1) === hash) start(); else location.hash = hash;
};
window.onhashchange = () => { params = readParams(); jobs = new Map(); render(); start(); };
start();
`;

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>TrainJob progress</title>
<style nonce="{{nonce}}">${STYLE}</style>
</head>
<body>
<h1>TrainJob progress</h1>
<form id="form">
  <label>Namespace <input id="namespace" required></label>
  <label>TrainJob (empty: all) <input id="name"></label>
  <label>Bearer token (optional) <input id="token" type="password" autocomplete="off"></label>
  <button type="submit">Show</button>
</form>
<p id="status"></p>
<div id="main"></div>
<script nonce="{{nonce}}">${SCRIPT}</script>
</body>
</html>
`;
