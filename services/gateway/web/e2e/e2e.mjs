// The dashboard in a real browser against the real stack: Debian's Chromium driven by
// playwright-core (no browser is downloaded). `npm run build` first; the Rust binaries come from
// `cargo build --bins`. Screenshots go to docs/screenshots/; logs and a failure screenshot to
// e2e/out/.
//
//   npm run e2e                       CHROMIUM=/usr/bin/chromium, FLICK_BIN_DIR=target/debug

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { outDir, repoRoot, sleep, Stack, waitFor, webRoot } from './stack.mjs';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const PASSWORD = 'a long passphrase for e2e';
const shots = path.join(repoRoot, 'docs', 'screenshots');

if (!existsSync(path.join(webRoot, 'dist', 'index.html'))) {
  console.error('dist/ is missing: run `npm run build` first');
  process.exit(2);
}
if (!existsSync(CHROMIUM)) {
  console.error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

const steps = [];
let current = '';
async function step(name, work) {
  current = name;
  const started = Date.now();
  await work();
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  steps.push(`ok   ${name} (${secs} s)`);
  console.log(`ok   ${name} (${secs} s)`);
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

/** Points the live CPU chart holds (set by the chart each time it draws). */
const cpuPoints = (page) =>
  page.$eval('[data-chart="cpu"] .chart-plot', (el) => Number(el.dataset.points ?? 0)).catch(() => 0);

// Access tokens live a minute (the shortest allowed), so the run sees them renewed.
// Notices go to a receiver on loopback (allowed for this run), grouped over 2 s instead of 30.
const stack = new Stack({
  simulate: 12,
  hot: 2,
  backfill: 1_800,
  env: {
    FLICK_GATEWAY__ACCESS_TOKEN_TTL_SECS: '60',
    FLICK_NOTIFY__ALLOW_HOSTS: '127.0.0.1',
    FLICK_ALERTER__NOTIFY_GROUP_SECS: '2',
  },
});

/** A Slack-like incoming webhook on loopback: every POST's path and body. */
const received = [];
const receiver = createServer((req, res) => {
  let body = '';
  req.on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    received.push({ path: req.url, body });
    res.end('ok');
  });
});
await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const SLACK_TOKEN = 'e2eSlackTokenXXXXXXXXXXXX';
const slackUrl = `http://127.0.0.1:${receiver.address().port}/services/T0E2E/B0E2E/${SLACK_TOKEN}`;
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
let page;
let failed = false;
try {
  await step('the stack starts (persister, alerter, gateway, collector, simulator)', () => stack.start());
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
  page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) errors.push(m.text());
  });
  const tokensInUrls = [];
  // A credential in a URL: a `token` parameter or path, or an API token itself. The API tokens
  // page and its API (`/tokens`, `/api/v1/tokens/{id}`) name tokens without holding one.
  const tokenInUrl = (url) =>
    /flk_[0-9a-f]{32}_/i.test(url) || /token/i.test(url.replace(/^(\w+:\/\/[^/]+)\/(api\/v1\/)?tokens(\/[0-9a-f-]{36})?(?=$|[?#])/i, '$1'));
  page.on('request', (r) => {
    if (tokenInUrl(r.url())) tokensInUrls.push(r.url());
  });
  // Servers the fleet subscription announced (`fleet.servers` frames' `added`), by id.
  const announced = new Set();
  page.on('websocket', (ws) => {
    if (tokenInUrl(ws.url())) tokensInUrls.push(ws.url());
    ws.on('framereceived', ({ payload }) => {
      if (typeof payload !== 'string' || !payload.includes('"fleet.servers"')) return;
      const frame = JSON.parse(payload);
      if (frame.type === 'fleet.servers') for (const server of frame.data.added) announced.add(server.id);
    });
  });

  await step('a visitor is sent to sign in, and registers (the first account is admin)', async () => {
    await page.goto(`${stack.url}/servers/${stack.localServerId}`);
    await page.waitForURL(/\/login/);
    await page.getByRole('link', { name: 'Create an account' }).click();
    await page.waitForURL(/\/register/);
    await page.fill('input[name=email]', 'ada@example.com');
    await page.fill('input[name=password]', PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();
    // Back where it was going after signing in.
    await page.waitForURL(new RegExp(`/servers/${stack.localServerId}`));
    await page.getByRole('link', { name: 'Admin' }).waitFor();
  });

  await step('the refresh token is an HttpOnly, Secure, SameSite=Strict cookie and no token is stored', async () => {
    const cookies = await page.context().cookies();
    const refresh = cookies.find((c) => c.name === 'flick_refresh');
    assert(refresh, `no refresh cookie: ${JSON.stringify(cookies.map((c) => c.name))}`);
    assert(refresh.httpOnly && refresh.secure && refresh.sameSite === 'Strict', `cookie ${JSON.stringify(refresh)}`);
    assert(refresh.path === '/api/v1/auth', `cookie path ${refresh.path}`);
    const visible = await page.evaluate(() => ({
      cookie: document.cookie,
      stored: [localStorage, sessionStorage].flatMap((s) => Object.keys(s).map((k) => s.getItem(k))),
    }));
    assert(!visible.cookie.includes('flick_refresh'), 'a script can read the refresh cookie');
    const tokens = visible.stored.filter((v) => v && (/eyJ[\w-]+\./.test(v) || v.length > 40));
    assert(tokens.length === 0, `something like a token in storage: ${tokens}`);
  });

  await step('a reload keeps the session', async () => {
    await page.goto(`${stack.url}/`);
    await page.reload();
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();
    assert(!page.url().includes('/login'), 'signed out by a reload');
  });

  await step('a reload that cuts a refresh off keeps the session', async () => {
    // The gateway rotates the refresh token, but its answer (and the new cookie) never
    // reaches the page: the reloaded page presents the old token, with the attempt id it kept.
    const before = (await page.context().cookies()).find((c) => c.name === 'flick_refresh');
    let rotated = 0;
    // What the page asked and got, for the failure message (this step has failed on a loaded
    // machine without telling why).
    const seen = [];
    const t0 = Date.now();
    const note = (what) => seen.push(`${Date.now() - t0} ms ${what}`);
    const onRequest = (r) => /\/auth\/|\/login/.test(r.url()) && note(`request ${r.method()} ${r.url()} ${r.postData() ?? ''}`);
    const onResponse = (r) => /\/auth\//.test(r.url()) && note(`response ${r.status()} ${r.url()}`);
    const onFailed = (r) => note(`failed ${r.url()} ${r.failure()?.errorText}`);
    page.on('request', onRequest);
    page.on('response', onResponse);
    page.on('requestfailed', onFailed);
    await page.route('**/api/v1/auth/refresh', async (route) => {
      const answer = await route.fetch();
      if (answer.status() === 200) rotated += 1;
      await route.abort('connectionreset');
    });
    const url = page.url();
    await page.reload();
    await waitFor('the refresh reaching the gateway', () => rotated > 0, 15_000, 50);
    // Leave the page before the route goes: a page still running retries its lost refresh,
    // and on a loaded machine that retry could land after the route was gone, succeed, and
    // clear the attempt id this step is about (then the old cookie below is a reuse).
    await page.goto('about:blank');
    await page.unroute('**/api/v1/auth/refresh');
    await page.context().addCookies([before]);
    await page.goto(url);
    try {
      await page.getByRole('heading', { name: 'Fleet' }).waitFor();
    } catch (err) {
      throw new Error(`${err.message}\n  on ${page.url()}; the page's auth traffic:\n  ${seen.join('\n  ')}`);
    } finally {
      page.off('request', onRequest);
      page.off('response', onResponse);
      page.off('requestfailed', onFailed);
    }
    assert(!page.url().includes('/login'), 'signed out by a reload that cut a refresh off');
    const after = (await page.context().cookies()).find((c) => c.name === 'flick_refresh');
    assert(after && after.value !== before.value, 'the retry set a new cookie');
    const kept = await page.evaluate(() => localStorage.getItem('flick.refreshAttempt'));
    assert(kept === null, `the attempt id outlived its answer: ${kept}`);
  });

  await step("the local collector's server appears in the fleet, online", async () => {
    const row = page.locator(`.frow[data-server="${stack.localServerId}"]`);
    await row.waitFor({ timeout: 45_000 });
    await row.locator('.status-online').waitFor({ timeout: 15_000 });
    await page.locator('.frow[data-server] >> text=sim-0000').first().waitFor();
  });

  await step('search and sort', async () => {
    await page.fill('input[type=search]', 'sim-0001');
    await waitFor('the search to narrow the list', async () => (await page.locator('.fleet-rows .frow').count()) === 1, 5_000);
    await page.fill('input[type=search]', '');
    await page.getByRole('button', { name: /^CPU/ }).click();
    await page.waitForURL(/sort=cpu%3Adesc|sort=cpu:desc/);
    const first = await page.locator('.fleet-rows .frow').first().getAttribute('data-server');
    assert(first, 'a first row');
  });

  await step('an alert appears when a simulated hot server crosses the CPU threshold', async () => {
    await page.getByRole('link', { name: /^Alerts/ }).click();
    await page.waitForURL(/\/alerts/);
    const firing = page.locator('tr.al-firing', { hasText: 'CPU' }).filter({ hasText: 'critical' });
    await firing.first().waitFor({ timeout: 60_000 });
    await page.locator('nav .count').waitFor();
    // Acknowledge one. (While the simulator replays its past half hour, alerts also resolve:
    // show them all so the row stays.)
    await page.getByLabel('State').selectOption('all');
    await page.waitForURL(/state=all/);
    await page.locator('section[data-loaded="true"]').waitFor();
    const any = page.locator('tr[data-alert]', { hasText: 'CPU' }).filter({ hasText: /critical/ });
    await any.first().waitFor();
    const id = await any.first().getAttribute('data-alert');
    const row = page.locator(`tr[data-alert="${id}"]`);
    // It may reach the page live before the persister has stored it: the page retries.
    await row.getByRole('button', { name: 'Acknowledge' }).click();
    await row.getByRole('button', { name: 'Acknowledge' }).waitFor({ state: 'detached', timeout: 20_000 });
  });

  await step('the admin gives the discovered local server to themselves', async () => {
    await page.getByRole('link', { name: 'Admin' }).click();
    const row = page.locator(`tr[data-server="${stack.localServerId}"]`);
    await row.waitFor();
    const me = await page.locator('code.user-id').textContent();
    await row.locator('input').fill(me.trim());
    await row.getByRole('button', { name: 'Assign' }).click();
    await row.waitFor({ state: 'detached' });
  });

  await step('the admin adds a Slack channel: its token is never shown, and "Send test" is delivered', async () => {
    const form = page.getByRole('form', { name: 'New channel' });
    await form.getByLabel('Kind').selectOption('slack');
    await form.getByLabel('Name').fill('team chat');
    await form.getByLabel('Incoming webhook URL').fill(slackUrl);
    await form.getByRole('button', { name: 'Add channel' }).click();
    const row = page.locator('tr[data-channel="team chat"]');
    await row.waitFor();
    const shown = (await row.textContent()) ?? '';
    assert(shown.includes('/services/T0E2E/B0E2E/…') && !shown.includes(SLACK_TOKEN), `the URL shown: ${shown}`);
    await row.getByRole('button', { name: 'Send test' }).click();
    const deliveries = page.locator('tr[data-deliveries-of="team chat"]');
    // The channel also receives the simulated fleet's backlog of transitions: on a loaded
    // machine the test notice may wait behind them, and theirs are listed beside it (the test
    // notice is the one marked "(test)").
    await deliveries
      .locator('li[data-status="delivered"]', { hasText: '(test)' })
      .locator('li[data-outcome="delivered"]')
      .first()
      .waitFor({ timeout: 60_000 });
    assert(
      received.some((r) => r.path === `/services/T0E2E/B0E2E/${SLACK_TOKEN}`),
      `the receiver got the test at the full URL: ${JSON.stringify(received.map((r) => r.path))}`,
    );
  });

  let serverUrl;
  await step('the server page opens, its live chart gains points within seconds, its top processes show', async () => {
    await page.getByRole('link', { name: 'Fleet', exact: true }).click();
    await page.locator(`.frow[data-server="${stack.localServerId}"] a.server-link`).click();
    await page.waitForURL(new RegExp(`/servers/${stack.localServerId}$`));
    serverUrl = page.url();
    await page.locator('[data-chart="cpu"]').waitFor();
    // The charts open on the gateway's replay of the minutes before (`since`), not on live only.
    const replay = await waitFor(
      'the replay of the live window',
      () => page.evaluate(() => {
        const charts = window.flickDebug.serverCharts;
        return charts?.replayed() ? { from: charts.streamedFrom(), now: Date.now() / 1000 } : null;
      }),
      15_000,
    );
    assert(replay.from !== null && replay.now - replay.from > 5, `the replay began ${replay.now - replay.from} s ago`);
    const before = await waitFor('a first point', async () => (await cpuPoints(page)) || null, 15_000);
    await waitFor('more points', async () => (await cpuPoints(page)) >= before + 3, 10_000);
    await page.locator('[data-chart="cores"] .chart-plot[data-points]').waitFor();
    // The top processes (the collector lists them every 5 s, through its own NATS identity).
    await page.locator('[data-processes="cpu"] tr[data-pid]').first().waitFor({ timeout: 20_000 });
    await page.locator('[data-processes="memory"] tr[data-pid]').first().waitFor();
  });

  await step('1 h switches to the stored history (average and min/max band, then per core, mount, interface)', async () => {
    await page.getByRole('button', { name: '1 h', exact: true }).click();
    await page.waitForURL(/range=1h/);
    await page.locator('[data-range="1h"][data-loaded="true"]').waitFor({ timeout: 15_000 });
    // The history is what the persister has committed (every 5 s): on a loaded machine the first
    // answer may come before the first commit, so reload as a user would, for up to 20 s.
    const read = () => page.$eval('[data-chart="h-cpu"] .chart-plot', (el) => Number(el.dataset.points ?? 0));
    let points = await read();
    for (let i = 0; i < 4 && points === 0; i++) {
      await sleep(5_000);
      await page.reload();
      await page.locator('[data-range="1h"][data-loaded="true"]').waitFor({ timeout: 15_000 });
      points = await read();
    }
    assert(points > 0, 'history has points');
    // The stored detail: per core, per mount, per interface, from the same samples.
    await page.locator('[data-detail-loaded="true"]').waitFor({ timeout: 30_000 });
    for (const chart of ['d-cores', 'd-mounts', 'd-load']) {
      // Charts draw only on screen.
      await page.locator(`[data-chart="${chart}"]`).scrollIntoViewIfNeeded();
      await waitFor(
        `${chart} drawn with points`,
        () => page.$eval(`[data-chart="${chart}"] .chart-plot`, (el) => Number(el.dataset.points ?? 0)),
        10_000,
      );
    }
    await page.getByRole('button', { name: 'Live', exact: true }).click();
    await page.locator('[data-chart="cpu"]').waitFor();
  });


  await step('a proposed rule is previewed on the chart, saved, fires, and its one page reaches the channel', async () => {
    const panel = page.locator('form.thresholds');
    await panel.getByRole('button', { name: 'Edit thresholds' }).click();
    // Memory in use on this machine is far above 2 %: the rule fires at once.
    await panel.getByLabel('Memory warning (%)').fill('1');
    await panel.getByLabel('Memory critical (%)').fill('2');
    await panel.getByLabel('Memory for (s)').fill('0');
    await panel.getByLabel('Memory margin (points)').fill('0');
    await panel.getByRole('button', { name: 'Preview on the last hour' }).click();
    const preview = page.locator('li[data-preview="memory"]');
    await preview.waitFor({ timeout: 20_000 });
    assert(/critical/.test((await preview.textContent()) ?? ''), 'the preview fires a critical');
    // Charts draw only on screen, and how far down the page it lands depends on what the panels
    // above hold (this busy machine's own CPU alerts, say).
    await page.locator('[data-chart="preview-memory"]').scrollIntoViewIfNeeded();
    await waitFor(
      'the preview chart drawn with the stored samples',
      () => page.$eval('[data-chart="preview-memory"] .chart-plot', (el) => Number(el.dataset.points ?? 0)).catch(() => 0),
      20_000,
    );
    await panel.getByRole('button', { name: 'Save thresholds' }).click();
    await page.locator('p.notice', { hasText: 'Saved' }).waitFor();
    const before = received.length;
    const row = page.locator('tr.al-firing', { hasText: 'Memory' }).filter({ hasText: 'critical' });
    await row.first().waitFor({ timeout: 30_000 });
    // (This busy machine's own CPU may page for the server too: count the memory incident's.)
    const memory = () => received.slice(before).filter((r) => r.body.includes(stack.localServerId) && /Memory/.test(r.body));
    await waitFor('the memory page at the receiver', () => memory().length > 0 || null, 30_000);
    // One page per incident: the critical, not its warning as well.
    await sleep(4_000);
    const more = memory();
    assert(/CRITICAL/.test(more[0].body), `the page is the critical: ${more[0].body}`);
    assert(more.length === 1, `one notice, not ${more.length}: ${more.map((r) => r.body).join(' | ')}`);
    await row.first().getByRole('button', { name: 'Notifications' }).click();
    await page.locator('tr[data-notices-of] li[data-status="delivered"]').waitFor({ timeout: 20_000 });
  });

  await step('the server is silenced for 2 h from its page; the Silences page lists it and ends it', async () => {
    await page.getByRole('button', { name: `Silence ${stack.localServerId}`, exact: true }).click();
    await page.locator('.server-silences p.notice', { hasText: 'Silenced' }).waitFor({ timeout: 10_000 });
    await page.getByRole('link', { name: 'Silences' }).first().click();
    await page.waitForURL(/\/silences$/);
    const row = page.locator(`tr[data-status="active"][data-server="${stack.localServerId}"]`);
    await row.waitFor();
    await row.getByRole('button', { name: 'End now' }).click();
    await row.waitFor({ state: 'detached', timeout: 10_000 });
    await page.goto(serverUrl);
    await page.locator('[data-chart="cpu"]').waitFor();
  });

  await step('the dashboard survives a gateway restart and the live chart resumes without a reload, gap or repeat', async () => {
    await page.evaluate(() => {
      window.__noReload = true;
    });
    const state = page.locator('.connection');
    await page.locator('.connection[data-state="open"]').waitFor();
    const gaps = () => page.evaluate(() => window.flickDebug.serverCharts.gaps());
    const gapsBefore = await gaps();
    await stack.stopGateway();
    await page.locator('.connection[data-state="waiting"], .connection[data-state="connecting"]').first().waitFor({ timeout: 15_000 });
    const shown = (await state.textContent()) ?? '';
    assert(/Reconnecting|Connecting/.test(shown), `the state is shown: ${shown}`);
    const during = await cpuPoints(page);
    // Down longer than a break in the line (5 s of silence): only a replay can close it.
    const downSecs = 8;
    await sleep(downSecs * 1_000);
    await stack.startGateway();
    await page.locator('.connection[data-state="open"]').waitFor({ timeout: 30_000 });
    await waitFor('points after the restart', async () => (await cpuPoints(page)) >= during + downSecs + 3, 20_000);
    assert(await page.evaluate(() => window.__noReload === true), 'the page was reloaded');
    // The resubscription replayed what the collector sent while the gateway was down: the CPU
    // line has no new break (a row of nulls; older ones may have left the hour since).
    const gapsAfter = await gaps();
    assert(gapsAfter <= gapsBefore, `the restart left ${gapsAfter - gapsBefore} break(s) in the CPU line`);
  });

  await step('the server page screenshot (a hot simulated server, the last hour)', async () => {
    await page.goto(`${stack.url}/`);
    // The simulator first publishes half an hour of past samples, then goes live.
    const hot = page.locator('.frow[data-server]', { hasText: 'sim-0000' });
    await hot.locator('.status-online').waitFor({ timeout: 180_000 });
    await hot.locator('a.server-link').click();
    await page.getByRole('button', { name: '1 h', exact: true }).click();
    await page.locator('[data-range="1h"][data-loaded="true"]').waitFor({ timeout: 15_000 });
    await page.locator('.alerts-table').waitFor();
    await sleep(500);
    await page.screenshot({ path: path.join(shots, 'server.png') });
  });

  await step('the fleet page screenshot (and a phone-sized view without sideways scrolling)', async () => {
    await page.goto(`${stack.url}/`);
    await page.locator(`.frow[data-server="${stack.localServerId}"]`).waitFor();
    await sleep(3_000);
    await page.screenshot({ path: path.join(shots, 'fleet.png') });
    const phone = await context.newPage();
    await phone.setViewportSize({ width: 390, height: 844 });
    await phone.goto(`${stack.url}/`);
    await phone.locator('.fleet-rows .frow').first().waitFor();
    const wide = await phone.evaluate(() => document.documentElement.scrollWidth);
    assert(wide <= 390, `the phone view scrolls sideways (${wide} px)`);
    await phone.goto(serverUrl);
    await phone.locator('[data-chart="cpu"]').waitFor();
    const wideServer = await phone.evaluate(() => document.documentElement.scrollWidth);
    assert(wideServer <= 390, `the phone server view scrolls sideways (${wideServer} px)`);
    await phone.close();
  });

  await step('"Add server": its command installs and enrols a real collector, which appears (no reload) and reports', async () => {
    await page.goto(`${stack.url}/`);
    await page.evaluate(() => {
      window.__noReload = true;
    });
    await page.getByRole('button', { name: 'Add server' }).click();
    await page.fill('.add-server input[name=name]', 'enrolled-by-e2e');
    await page.fill('.add-server input[name=tags]', 'e2e, enrolled');
    await page.getByRole('button', { name: 'Create the install command' }).click();
    const command = (await page.locator('[data-command=install]').textContent()) ?? '';
    assert(
      command.startsWith(`curl -fsSL ${stack.url}/install.sh -o flick-install.sh && echo '`) &&
        /echo '[0-9a-f]{64} {2}flick-install\.sh' \| sha256sum -c - && sudo sh flick-install\.sh --gateway /.test(command) &&
        /--token \S+/.test(command) &&
        /--ca-sha256 sha256:[0-9a-f]{64}/.test(command),
      `the install command: ${command}`,
    );
    await page.locator('[data-enroll-status] >> text=Waiting for the host to enrol').waitFor();
    await sleep(2_000); // the rows below fill in from the live stream
    await page.screenshot({ path: path.join(shots, 'add-server.png') });
    // The command as shown, with the installer's documented flags for a root that is not this
    // system (no systemctl): it checks the script's SHA-256, the script downloads the hub's
    // collector and checks it, the collector checks the hub's CA and enrols.
    const root = path.join(stack.hubDir, 'host-root');
    const installed = spawnSync('sh', ['-c', command.replace('sudo sh flick-install.sh', `sh flick-install.sh --root ${root} --no-systemctl`)], {
      encoding: 'utf8',
      cwd: stack.hubDir,
    });
    assert(installed.status === 0, `install.sh: ${installed.stdout}${installed.stderr}`);
    // What the unit would start, with nothing of the stack's environment: only the state dir.
    stack.spawn(
      'enrolled',
      path.join(root, 'usr/local/bin/flick-collector'),
      ['--state-dir', path.join(root, 'var/lib/flick-collector')],
      {},
      { clean: true },
    );
    const joined = page.locator('[data-joined][data-reporting=yes]');
    await joined.waitFor({ timeout: 30_000 });
    const id = await joined.getAttribute('data-joined');
    assert(id && id !== stack.localServerId, `a server of its own: ${id}`);
    // The fleet page was open all along: its subscription announces the host, and the table
    // shows it without a reload (the page no longer re-reads the server list).
    const row = page.locator(`.frow[data-server="${id}"]`);
    await row.waitFor({ timeout: 20_000 });
    assert(announced.has(id), `no fleet.servers frame announced ${id}`);
    await page.getByRole('button', { name: 'Close' }).click();
    await row.locator('.status-online').waitFor({ timeout: 15_000 });
    assert((await row.textContent())?.includes('enrolled-by-e2e'), 'the enrolled server carries the name given');
    assert(await page.evaluate(() => window.__noReload === true), 'the page was reloaded');
  });

  await step('the access token is renewed before it expires, and the live socket stays open', async () => {
    const token = () => page.evaluate(() => window.flickDebug.sessionExpiresAt());
    const first = await token();
    await waitFor('a renewed token', async () => (await token()) !== first, 70_000, 1_000);
    await page.goto(serverUrl);
    await page.locator('.connection[data-state="open"]').waitFor();
    const before = await waitFor('a first point', async () => (await cpuPoints(page)) || null, 15_000);
    const second = await token();
    await waitFor('another renewal', async () => (await token()) !== second, 70_000, 1_000);
    // The socket re-authenticated in place: still open, still streaming.
    await waitFor('points after the renewal', async () => (await cpuPoints(page)) >= before + 3, 15_000);
    const state = await page.locator('.connection').getAttribute('data-state');
    assert(state === 'open', `the socket is ${state}`);
  });

  await step('an API token made on the tokens page scrapes /api/v1/prometheus, and is refused once revoked', async () => {
    await page.getByRole('link', { name: 'API tokens' }).click();
    await page.waitForURL(/\/tokens$/);
    const form = page.getByRole('form', { name: 'New API token' });
    await form.getByLabel('Name').fill('prometheus');
    await form.getByRole('checkbox', { name: /^metrics:scrape/ }).check();
    await form.getByLabel('Expires').selectOption('30d');
    await form.getByRole('button', { name: 'Create token' }).click();
    const created = page.locator('[data-created="prometheus"]');
    await created.waitFor();
    const token = ((await created.locator('[data-secret="token"]').textContent()) ?? '').trim();
    assert(/^flk_[0-9a-f]{32}_[\w-]+$/.test(token), `the token shown: ${token}`);
    const config = (await created.locator('[data-secret="scrape-config"]').textContent()) ?? '';
    assert(
      config.includes(`credentials: ${token}`) && config.includes(`targets: ['${new URL(stack.url).host}']`),
      `the scrape_config shown: ${config}`,
    );
    const row = page.locator('tr[data-token-name="prometheus"]');
    await row.waitFor();
    assert(((await row.textContent()) ?? '').includes(token.slice(0, 12)), 'the row shows the token\'s hint');
    const scrape = () => fetch(`${stack.url}/api/v1/prometheus`, { headers: { authorization: `Bearer ${token}` } });
    const ok = await scrape();
    const text = await ok.text();
    assert(ok.status === 200 && text.includes('flick_cpu_usage_ratio'), `the scrape: ${ok.status} ${text.slice(0, 300)}`);
    await row.getByRole('button', { name: 'Revoke', exact: true }).click();
    await row.getByRole('button', { name: 'Revoke now' }).click();
    await row.waitFor({ state: 'detached', timeout: 10_000 });
    await created.waitFor({ state: 'detached' });
    const refused = await scrape();
    assert(refused.status === 401, `a revoked token's scrape: ${refused.status}`);
  });

  await step("an administrator revokes another user's leaked API token on the Admin page", async () => {
    const json = async (path, body, bearer) => {
      const r = await fetch(`${stack.url}/api/v1${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
        body: JSON.stringify(body),
      });
      const text = await r.text();
      assert(r.status === 201, `POST ${path}: ${r.status} ${text}`);
      return JSON.parse(text);
    };
    const carol = await json('/auth/register', { email: 'carol@example.com', password: PASSWORD });
    const { token } = await json('/tokens', { name: 'carol-ci', scopes: ['read'] }, carol.accessToken);
    const use = () => fetch(`${stack.url}/api/v1/servers`, { headers: { authorization: `Bearer ${token}` } });
    assert((await use()).status === 200, "carol's token works");
    await page.getByRole('link', { name: 'Admin' }).click();
    const section = page.locator('[data-admin-tokens]');
    const row = section.locator('tr[data-token-name="carol-ci"]');
    await row.waitFor();
    assert((await row.locator('[data-owner]').textContent()) === 'carol@example.com', 'the row names the owner');
    await row.getByRole('button', { name: 'Revoke', exact: true }).click();
    await row.getByRole('button', { name: 'Revoke now' }).click();
    await row.waitFor({ state: 'detached', timeout: 10_000 });
    const refused = await use();
    assert(refused.status === 401, `the revoked token: ${refused.status}`);
  });

  await step('sign out', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/login/);
    await page.goto(`${stack.url}/alerts`);
    await page.waitForURL(/\/login/);
    const stored = await page.evaluate(() => localStorage.getItem('flick.signedIn'));
    assert(stored === null, 'this browser is marked signed out');
    const cookies = await page.context().cookies();
    assert(!cookies.some((c) => c.name === 'flick_refresh'), 'the refresh cookie is gone');
  });

  await step("a second user typing the first user's server id into the URL sees \"not found\"", async () => {
    const other = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const bob = await other.newPage();
    await bob.goto(`${stack.url}/register`);
    await bob.fill('input[name=email]', 'bob@example.com');
    await bob.fill('input[name=password]', PASSWORD);
    await bob.getByRole('button', { name: 'Create account' }).click();
    await bob.getByRole('heading', { name: 'Fleet' }).waitFor();
    assert((await bob.getByRole('link', { name: 'Admin' }).count()) === 0, 'bob is not an admin');
    await bob.locator('.state.empty').waitFor();
    await bob.goto(`${stack.url}/servers/${stack.localServerId}`);
    await bob.getByRole('heading', { name: 'Server not found' }).waitFor();
    assert((await bob.locator('[data-chart]').count()) === 0, 'no chart of a server bob may not see');
    const text = await bob.locator('main').textContent();
    assert(!text.includes(stack.localServerId), 'nothing of the server is shown');
    await other.close();
  });

  assert(errors.length === 0, `errors in the page: ${errors.join('; ')}`);
  assert(tokensInUrls.length === 0, `a token in a URL: ${tokensInUrls.join(', ')}`);
} catch (err) {
  failed = true;
  console.error(`FAIL ${current}: ${err.message}`);
  if (page) await page.screenshot({ path: path.join(outDir, 'failure.png'), fullPage: true }).catch(() => {});
  console.error(`logs and a screenshot are in ${outDir}`);
} finally {
  receiver.close();
  await browser.close();
  await stack.stop();
}
console.log(failed ? 'e2e: FAILED' : `e2e: ${steps.length} steps passed; screenshots in docs/screenshots/`);
process.exit(failed ? 1 : 0);
