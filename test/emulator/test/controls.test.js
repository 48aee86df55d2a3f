'use strict';
// The /_emulator/ controls, every fault action, and the command line.
const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert');
const { spawn } = require('child_process');
const { startEmulator, assertTwilioError, ACCOUNT, BIN } = require('./helpers');

let emu;
before(async () => { emu = await startEmulator(); });
after(() => emu.stop());
beforeEach(() => emu.control('POST', 'reset'));

const BUY = '/IncomingPhoneNumbers.json';
const buy = (phone, opts = {}) => emu.api('POST', BUY, { form: { PhoneNumber: phone }, ...opts });
const isAvailable = async (phone) => (await emu.api('GET', '/AvailablePhoneNumbers/US/Local.json',
  { query: { Contains: `+${phone.slice(1)}$` } })).json.available_phone_numbers.length === 1;
const fault = (spec) => emu.control('POST', 'faults', spec);

test('request log: every API request with its fields; controls are not logged; DELETE clears it', async () => {
  await buy('+14155550130', { form: { PhoneNumber: '+14155550130', FriendlyName: 'x' } });
  await emu.api('GET', '/AvailablePhoneNumbers/US/Local.json', { query: { AreaCode: '415', PageSize: '2' } });
  await buy('+14155550130');
  await emu.api('GET', BUY, { auth: ['nobody', 'x'] });
  await emu.control('GET', 'state');
  const log = await emu.control('GET', 'requests');
  assert.strictEqual(log.length, 4);
  assert.deepStrictEqual(log.map((e) => e.seq), [1, 2, 3, 4]);
  const [post, get, dup, unauth] = log;
  for (const f of ['seq', 'method', 'path', 'query', 'form', 'auth_user', 'status', 'twilio_code', 'started_at', 'ms']) assert.ok(f in post, f);
  assert.strictEqual(post.method, 'POST');
  assert.strictEqual(post.path, `/2010-04-01/Accounts/${ACCOUNT}${BUY}`);
  assert.deepStrictEqual(post.form, { PhoneNumber: '+14155550130', FriendlyName: 'x' });
  assert.strictEqual(post.auth_user, ACCOUNT);
  assert.strictEqual(post.status, 201);
  assert.strictEqual(post.twilio_code, null);
  assert.ok(post.ms >= 0);
  assert.ok(!Number.isNaN(Date.parse(post.started_at)));
  assert.deepStrictEqual(get.query, { AreaCode: '415', PageSize: '2' });
  assert.strictEqual(dup.status, 400);
  assert.strictEqual(dup.twilio_code, 21422);
  assert.strictEqual(unauth.status, 401);
  assert.strictEqual(unauth.twilio_code, 20003);
  assert.strictEqual(unauth.auth_user, 'nobody');
  await emu.control('DELETE', 'requests');
  assert.deepStrictEqual(await emu.control('GET', 'requests'), []);
});

test('repeated form keys are logged as arrays', async () => {
  await emu.req('POST', '/v2/HostedNumber/Orders', { form: { PhoneNumber: '+15017122661', ContactPhoneNumber: '+15017122662',
    AddressSid: 'AD0123456789abcdef0123456789abcdef', Email: 'e@example.com', CcEmails: ['a@x.com', 'b@x.com'] } });
  const [entry] = await emu.control('GET', 'requests');
  assert.deepStrictEqual(entry.form.CcEmails, ['a@x.com', 'b@x.com']);
});

test('reset returns to the seeded state', async () => {
  await buy('+14155550131');
  await emu.req('POST', '/v1/Trunks', { form: {} });
  await fault({ path: 'Nothing', action: 'status', status: 500, times: 0 });
  await emu.control('POST', 'reset');
  const state = await emu.control('GET', 'state');
  assert.deepStrictEqual([state.numbers, state.trunks, state.hosted_orders, state.subaccounts], [[], [], [], []]);
  assert.deepStrictEqual(await emu.control('GET', 'faults'), []);
  assert.deepStrictEqual(await emu.control('GET', 'requests'), []);
  assert.ok(await isAvailable('+14155550131'));
});

test('fault latency delays, then serves', async () => {
  // a wide gap between the delayed and the undelayed request: busy CI
  // machines must not blur the two
  await fault({ path: 'AvailablePhoneNumbers', action: 'latency', ms: 1000 });
  const t0 = Date.now();
  const res = await emu.api('GET', '/AvailablePhoneNumbers/US/Local.json');
  assert.strictEqual(res.status, 200);
  assert.ok(Date.now() - t0 >= 990);
  const t1 = Date.now();
  await emu.api('GET', '/AvailablePhoneNumbers/US/Local.json');
  assert.ok(Date.now() - t1 < 500); // times defaults to 1
});

test('fault status: 429 with Retry-After and 20429, request not applied; custom code', async () => {
  await fault({ method: 'POST', path: 'IncomingPhoneNumbers', action: 'status', status: 429, retry_after: 2 });
  const res = await buy('+14155550132');
  assertTwilioError(assert, res, 429, 20429);
  assert.strictEqual(res.headers['retry-after'], '2');
  assert.ok(await isAvailable('+14155550132'));
  assert.strictEqual((await buy('+14155550132')).status, 201);
  await fault({ path: '/v1/', action: 'status', status: 503, code: 20503 });
  assertTwilioError(assert, await emu.req('GET', '/v1/Trunks'), 503, 20503);
  const log = (await emu.control('GET', 'requests')).filter((e) => !e.path.includes('AvailablePhoneNumbers'));
  assert.deepStrictEqual(log.map((e) => [e.status, e.twilio_code, e.fault]), [[429, 20429, 'status'], [201, null, null], [503, 20503, 'status']]);
});

test('fault reset_before drops the connection and the purchase does not happen', async () => {
  await fault({ method: 'POST', path: 'IncomingPhoneNumbers', action: 'reset_before' });
  await assert.rejects(buy('+14155550133'), (e) => ['ECONNRESET', 'EPIPE'].includes(e.code) || /socket hang up/.test(e.message));
  assert.ok(await isAvailable('+14155550133'));
  const [entry] = await emu.control('GET', 'requests');
  assert.strictEqual(entry.fault, 'reset_before');
  assert.strictEqual(entry.status, null);
});

test('fault reset_after applies the purchase and loses the reply', async () => {
  await fault({ method: 'POST', path: 'IncomingPhoneNumbers\\.json$', action: 'reset_after' });
  await assert.rejects(buy('+14155550134'), (e) => ['ECONNRESET', 'EPIPE'].includes(e.code) || /socket hang up/.test(e.message));
  assert.ok(!(await isAvailable('+14155550134')));
  const owned = await emu.api('GET', BUY, { query: { PhoneNumber: '+14155550134' } });
  assert.strictEqual(owned.json.incoming_phone_numbers.length, 1); // the lookup a careful client does
  assertTwilioError(assert, await buy('+14155550134'), 400, 21422);
  const [entry] = await emu.control('GET', 'requests');
  assert.deepStrictEqual([entry.fault, entry.status], ['reset_after', 201]);
});

test('fault hang never answers; later requests are served', async () => {
  await fault({ path: 'Trunks', action: 'hang' });
  await assert.rejects(emu.req('GET', '/v1/Trunks', { timeout: 400 }), (e) => e.code === 'ETIMEDOUT');
  assert.strictEqual((await emu.req('GET', '/v1/Trunks')).status, 200);
});

test('fault malformed: the request is applied, the body is not JSON', async () => {
  await fault({ method: 'POST', path: 'IncomingPhoneNumbers', action: 'malformed' });
  const res = await buy('+14155550135');
  assert.strictEqual(res.status, 201);
  assert.strictEqual(res.json, undefined);
  assert.throws(() => JSON.parse(res.text));
  assert.ok(!(await isAvailable('+14155550135')));
});

test('fault truncate: headers promise more than the body that arrives', async () => {
  await fault({ path: 'AvailablePhoneNumbers', action: 'truncate' });
  await assert.rejects(emu.api('GET', '/AvailablePhoneNumbers/US/Local.json'),
    (e) => e.code === 'ECONNRESET' || /aborted|socket hang up/.test(e.message));
});

test('fault times, method and path matching; list and clear', async () => {
  const f = await fault({ method: 'GET', path: '^/v1/Trunks$', action: 'status', status: 500, times: 2 });
  assert.strictEqual(f.action, 'status');
  assert.strictEqual(f.code, 20500);
  assert.strictEqual(f.remaining, 2);
  assert.strictEqual((await emu.req('POST', '/v1/Trunks', { form: {} })).status, 201); // other method
  assert.strictEqual((await emu.req('GET', '/v1/PhoneNumbers/Countries')).status, 200); // other path
  assert.strictEqual((await emu.req('GET', '/v1/Trunks')).status, 500);
  assert.strictEqual((await emu.req('GET', '/v1/Trunks')).status, 500);
  assert.strictEqual((await emu.req('GET', '/v1/Trunks')).status, 200);
  await fault({ path: 'Countries', action: 'status', status: 502, times: 0 });
  for (let i = 0; i < 3; i++) assert.strictEqual((await emu.req('GET', '/v1/PhoneNumbers/Countries')).status, 502);
  const listed = await emu.control('GET', 'faults');
  assert.deepStrictEqual(listed.map((x) => [x.hits, x.remaining]), [[2, 0], [3, null]]);
  await emu.control('DELETE', 'faults');
  assert.strictEqual((await emu.req('GET', '/v1/PhoneNumbers/Countries')).status, 200);
  const bad = await emu.req('POST', '/_emulator/faults', { json: { action: 'explode' }, auth: false });
  assert.strictEqual(bad.status, 400);
  assert.strictEqual((await emu.req('POST', '/_emulator/faults', { json: { action: 'latency' }, auth: false })).status, 400);
  assert.strictEqual((await emu.req('POST', '/_emulator/faults', { json: { action: 'hang', path: '(' }, auth: false })).status, 400);
  assert.strictEqual((await emu.req('GET', '/_emulator/nothing', { auth: false })).status, 404);
});

test('clock: set and advance; resources carry the emulated time', async () => {
  const set = await emu.control('POST', 'clock', { now: '2031-01-31T10:00:00Z' });
  assert.ok(set.now.startsWith('2031-01-31T10:00:0'));
  const bought = await buy('+14155550136');
  const n = bought.json;
  assert.match(n.date_created, /^Fri, 31 Jan 2031 10:00:0\d \+0000$/);
  // the reply's Date header is the emulator's time too (clients measure skew from it)
  assert.match(bought.headers.date, /^Fri, 31 Jan 2031 10:00:0\d GMT$/);
  const adv = await emu.control('POST', 'clock', { advance_s: 86400 });
  assert.ok(adv.now.startsWith('2031-02-01T10:00:0'));
  const t = (await emu.req('POST', '/v1/Trunks', { form: {} })).json;
  assert.match(t.date_created, /^2031-02-01T10:00:0\dZ$/);
  const [, entry] = await emu.control('GET', 'requests');
  assert.ok(entry.started_at.startsWith('2031-02-01'));
  assert.strictEqual((await emu.req('POST', '/_emulator/clock', { json: { now: 'soon' }, auth: false })).status, 400);
  assert.strictEqual((await emu.req('POST', '/_emulator/clock', { json: {}, auth: false })).status, 400);
});

test('state shows owned numbers with account and trunk, trunks, orders, subaccounts', async () => {
  const sub = (await emu.req('POST', '/2010-04-01/Accounts.json', { form: { FriendlyName: 'S' } })).json;
  const t = (await emu.req('POST', '/v1/Trunks', { form: { FriendlyName: 'T' } })).json;
  await buy('+14155550137', { form: { PhoneNumber: '+14155550137', TrunkSid: t.sid } });
  await emu.api('POST', BUY, { account: sub.sid, form: { PhoneNumber: '+14155550138' } });
  const state = await emu.control('GET', 'state');
  assert.deepStrictEqual(state.numbers.map((n) => [n.phone_number, n.account_sid, n.trunk_sid, n.origin, n.number_type]), [
    ['+14155550137', ACCOUNT, t.sid, 'twilio', 'local'], ['+14155550138', sub.sid, null, 'twilio', 'local']]);
  assert.deepStrictEqual(state.trunks.map((x) => [x.sid, x.phone_numbers]), [[t.sid, ['+14155550137']]]);
  assert.deepStrictEqual(state.subaccounts.map((a) => a.sid), [sub.sid]);
  assert.strictEqual(state.subaccounts[0].auth_token, sub.auth_token);
});

function run(args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

test('command line: bad arguments exit 2 with usage; SIGTERM exits 0 after exactly one ready line', async () => {
  for (const args of [[], ['--port', '0'], ['--port', 'x', '--account-sid', ACCOUNT, '--auth-token', 't'],
    ['--port', '0', '--account-sid', 'AC12', '--auth-token', 't'], ['--port', '0', '--account-sid', ACCOUNT, '--auth-token', 't', '--api-key', 'SK0'],
    ['--port', '0', '--account-sid', ACCOUNT, '--auth-token', 't', '--bogus', '1'],
    ['--port', '0', '--account-sid', ACCOUNT, '--auth-token', 't', '--deterministic-sids=yes']]) {
    const r = await run(args);
    assert.strictEqual(r.code, 2, args.join(' '));
    assert.match(r.err, /usage: twilio-emulator/);
    assert.strictEqual(r.out, '');
  }
  const other = await startEmulator(['--seed=7']);
  assert.match(other.stdout(), /^twilio-emulator listening on http:\/\/127\.0\.0\.1:\d+\n$/);
  assert.strictEqual(await other.stop(), 0);
  assert.strictEqual(other.stdout().split('\n').filter(Boolean).length, 1);
});

test('--max-log keeps only the newest entries', async () => {
  const small = await startEmulator(['--max-log', '3']);
  try {
    for (let i = 0; i < 7; i++) await small.req('GET', '/v1/PhoneNumbers/Countries');
    const log = await small.control('GET', 'requests');
    assert.deepStrictEqual(log.map((e) => e.seq), [5, 6, 7]);
  } finally {
    await small.stop();
  }
});
