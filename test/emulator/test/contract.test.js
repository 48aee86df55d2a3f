'use strict';
// Contract: the fidelity scenario through Prism 5 in proxy mode, one Prism
// per Twilio host spec, each validating requests and responses against the
// OpenAPI file. Any `sl-violations` entry of severity Error fails, except the
// wire forms real Twilio sends where the spec says otherwise, each allowed by
// (route, field):
//  - AvailablePhoneNumber latitude/longitude as decimal strings;
//  - pricing base_price/current_price as decimal strings;
//  - 2010-04-01 URIs relative to https://api.twilio.com (first_page_uri, uri,
//    next_page_uri, previous_page_uri, and a country's uri): the spec's own
//    descriptions say "relative to https://api.twilio.com" while typing them
//    `format: uri`, which requires a scheme;
//  - on the request side, CcEmails of a hosted order: Twilio takes lists as
//    repeated form keys (what the helper library sends), which Prism 5 reads
//    as one string and reports as "must be array";
//  - on the request side, EmergencyAddressSid empty: Twilio's way to remove a
//    number's emergency address (its emergency-calling guides), which the
//    spec's SID pattern and minLength do not admit.
// Twilio error replies are not in the specs; Prism only warns that their
// status is undocumented, and the behaviour tests check their shape.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const path = require('path');
const net = require('net');
const { spawn } = require('child_process');
const { startEmulator, request, ACCOUNT } = require('./helpers');
const { runSuite } = require('./twilio-suite');

const PRISM = require.resolve('@stoplight/prism-cli/dist/index.js');
const SPECS = { api: 'twilio_api_v2010.json', pricing: 'twilio_pricing_v1.json', trunking: 'twilio_trunking_v1.json', numbers: 'twilio_numbers_v2.json',
  messaging: 'twilio_messaging_v1.json' };

const ACC = '/2010-04-01/Accounts/[^/]+';
const ALLOWED = [
  [new RegExp(`^${ACC}/AvailablePhoneNumbers/[A-Z]{2}/[A-Za-z]+\\.json$`), /^available_phone_numbers\.\d+\.(latitude|longitude)$/, 'type'],
  [/^\/v1\/PhoneNumbers\/Countries\/[A-Z]{2}$/, /^phone_number_prices\.\d+\.(base_price|current_price)$/, 'type'],
  [/^\/2010-04-01\/.*\.json$/, /^(first_page_uri|uri|next_page_uri|previous_page_uri)$/, 'format'],
  [new RegExp(`^${ACC}/AvailablePhoneNumbers\\.json$`), /^countries\.\d+\.uri$/, 'format'],
  [/^\/v2\/HostedNumber\/Orders$/, /^CcEmails$/, 'type', 'request'],
  [new RegExp(`^${ACC}/IncomingPhoneNumbers/PN[0-9a-f]+\\.json$`), /^EmergencyAddressSid$/, 'pattern', 'request'],
  [new RegExp(`^${ACC}/IncomingPhoneNumbers/PN[0-9a-f]+\\.json$`), /^EmergencyAddressSid$/, 'minLength', 'request'],
];

function freePort() {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function startPrism(spec, upstream) {
  const port = await freePort();
  const child = spawn(process.execPath, [PRISM, 'proxy', '-p', String(port), '-h', '127.0.0.1',
    path.join(__dirname, '..', 'openapi', spec), upstream], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  const deadline = Date.now() + 60000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prism ${spec} exited: ${log.slice(-2000)}`);
    if (/Prism is listening/.test(log)) break;
    if (Date.now() > deadline) throw new Error(`prism ${spec} did not start: ${log.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return { child, port, base: `http://127.0.0.1:${port}`, log: () => log };
}

const violationsOf = (headers) => (headers['sl-violations'] ? JSON.parse(headers['sl-violations']) : []);

// Prism truncates the sl-violations header past 8 KB ("Too many violations!",
// e.g. 60 search results x 2 string coordinates). Its log names every
// violation, one block per request in arrival order, so such a reply is
// checked against the log block of the same request instead.
function logBlocks(log) {
  const blocks = [];
  for (const line of log.split('\n')) {
    const req = /\[HTTP SERVER\] (\w+) (\S+) .*Request received/.exec(line);
    if (req) {
      blocks.push({ method: req[1].toUpperCase(), path: req[2], violations: [] });
      continue;
    }
    const v = /\[VALIDATOR\] \S+\s+(error|warning)\s+Violation: (\S+) (.*)$/.exec(line);
    if (v && blocks.length) {
      blocks[blocks.length - 1].violations.push({
        location: v[2].split('.'), severity: v[1] === 'error' ? 'Error' : 'Warning',
        code: /must match format/.test(v[3]) ? 'format' : /must be /.test(v[3]) ? 'type' : 'other', message: v[3],
      });
    }
  }
  return blocks;
}

function isAllowed(uri, v) {
  if (v.location[1] !== 'body') return false;
  const field = v.location.slice(2).join('.');
  const p = new URL(uri).pathname;
  return ALLOWED.some(([route, f, code, part = 'response']) => v.location[0] === part && route.test(p) && f.test(field) && v.code === code);
}

let emu;
let prisms = {};
before(async () => {
  emu = await startEmulator();
  const started = await Promise.all(Object.entries(SPECS).map(async ([host, spec]) => [host, await startPrism(spec, emu.base)]));
  prisms = Object.fromEntries(started);
});
after(async () => {
  for (const p of Object.values(prisms)) p.child.kill('SIGTERM');
  await emu.stop();
});

test('the fidelity scenario through Prism: no contract violation beyond the allowed wire forms', async (t) => {
  const targets = Object.fromEntries(Object.entries(prisms).map(([h, p]) => [h, p.base]));
  const { responses } = await runSuite(targets, emu.control);
  await new Promise((r) => setTimeout(r, 500)); // let the Prism logs flush
  const hostOf = Object.fromEntries(Object.entries(prisms).map(([h, p]) => [p.base, h]));
  const blocks = Object.fromEntries(Object.entries(prisms).map(([h, p]) => [h, logBlocks(p.log())]));
  const seen = {};
  const unexpected = [];
  const allowedSeen = new Set();
  let validated = 0;
  let fromLog = 0;
  for (const r of responses) {
    const host = hostOf[new URL(r.uri).origin];
    const block = blocks[host][seen[host] = (seen[host] || 0)];
    seen[host]++;
    assert.ok(block && block.path === new URL(r.uri).pathname && block.method === r.method, `log block for ${r.method} ${r.uri}`);
    let vs;
    const header = r.headers['sl-violations'];
    if (header && header.startsWith('Too many violations!')) {
      vs = block.violations;
      fromLog++;
    } else {
      vs = violationsOf(r.headers);
      assert.strictEqual(vs.filter((v) => v.severity === 'Error').length, block.violations.filter((v) => v.severity === 'Error').length);
    }
    if (!vs.some((v) => /route not found/i.test(v.message))) validated++;
    for (const v of vs) {
      if (v.severity !== 'Error') continue;
      if (isAllowed(r.uri, v)) allowedSeen.add(`${v.code}:${v.location.slice(2).filter((x) => !/^\d+$/.test(x)).join('.')}`);
      else unexpected.push({ request: `${r.method} ${r.uri}`, ...v });
    }
  }
  assert.deepStrictEqual(unexpected, []);
  assert.strictEqual(validated, responses.length, 'every request matched a route of its spec');
  // The validator really ran: the known string-typed wire forms were reported.
  for (const f of ['type:available_phone_numbers.latitude', 'type:phone_number_prices.base_price', 'format:first_page_uri']) {
    assert.ok(allowedSeen.has(f), `expected Prism to report ${f}; saw ${[...allowedSeen]}`);
  }
  assert.ok(fromLog >= 1, 'the 60-number search overflowed the header and was checked from the log');
  t.diagnostic(`contract: ${validated} requests validated by Prism (${fromLog} from its log), 0 violations beyond allowed wire forms (${[...allowedSeen].sort().join(', ')})`);
});

test('Prism reports a request that breaks the contract (the check can fail)', async () => {
  const res = await request(prisms.api.port, 'GET', `/2010-04-01/Accounts/${ACCOUNT}/IncomingPhoneNumbers.json`, { query: { PageSize: '5000' } });
  const errors = violationsOf(res.headers).filter((v) => v.severity === 'Error');
  assert.ok(errors.some((v) => v.location[0] === 'request'), JSON.stringify(errors));
  const noAuth = await request(prisms.trunking.port, 'GET', '/v1/Trunks', { auth: false });
  assert.ok(violationsOf(noAuth.headers).some((v) => v.severity === 'Error' && v.location[0] === 'request'));
});
