'use strict';
// The account concurrency limit, as Twilio enforces it: --concurrency-limit
// and POST /_emulator/limits; a request beyond the limit is answered 429 with
// error 20429 and has no effect; every reply carries Twilio-Concurrent-Requests.
const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert');
const { spawn } = require('child_process');
const { startEmulator, assertTwilioError, ACCOUNT, BIN } = require('./helpers');

let emu;
before(async () => { emu = await startEmulator(); });
after(() => emu.stop());
beforeEach(() => emu.control('POST', 'reset'));

const BUY = '/IncomingPhoneNumbers.json';
const buy = (phone, e = emu) => e.api('POST', BUY, { form: { PhoneNumber: phone } });
const owned = async (e = emu) => (await e.control('GET', 'state')).numbers.map((n) => n.phone_number);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('every reply says how many requests are in flight; controls are not counted', async () => {
  const res = await emu.api('GET', BUY);
  assert.strictEqual(res.status, 200);
  assert.strictEqual(res.headers['twilio-concurrent-requests'], '1');
  const refused = await emu.api('GET', BUY, { auth: ['nobody', 'x'] });
  assert.strictEqual(refused.status, 401);
  assert.strictEqual(refused.headers['twilio-concurrent-requests'], '1');
  // three slow requests at once: the last to arrive counts all three
  await emu.control('POST', 'faults', { path: 'IncomingPhoneNumbers', action: 'latency', ms: 1500, times: 3 });
  const replies = await Promise.all([0, 1, 2].map(() => emu.api('GET', BUY)));
  assert.deepStrictEqual(replies.map((r) => r.headers['twilio-concurrent-requests']).sort(), ['1', '2', '3']);
  const limits = await emu.control('GET', 'limits');
  assert.deepStrictEqual(limits, { concurrent_requests: 0, in_flight: 0, max_in_flight: 3, limited: 0 });
});

test('a request beyond the limit is answered 429 (20429) and does not take effect', async () => {
  assert.strictEqual((await emu.control('POST', 'limits', { concurrent_requests: 2 })).concurrent_requests, 2);
  await emu.control('POST', 'faults', { method: 'POST', path: 'IncomingPhoneNumbers', action: 'latency', ms: 2000, times: 0 });
  // two purchases in flight (held 2 s by the latency), then two more
  const first = [buy('+14155550140'), buy('+14155550141')];
  for (let i = 0; i < 100 && (await emu.control('GET', 'limits')).in_flight < 2; i++) await sleep(20);
  const late = await Promise.all([buy('+14155550142'), buy('+14155550143')]);
  for (const r of late) {
    assertTwilioError(assert, r, 429, 20429);
    assert.strictEqual(r.headers['twilio-concurrent-requests'], '3');
  }
  for (const r of await Promise.all(first)) assert.strictEqual(r.status, 201, r.text);
  assert.deepStrictEqual(await owned(), ['+14155550140', '+14155550141']);
  const log = await emu.control('GET', 'requests');
  assert.deepStrictEqual(log.map((e) => [e.form.PhoneNumber, e.status, e.twilio_code]).sort(), [
    ['+14155550140', 201, null], ['+14155550141', 201, null], ['+14155550142', 429, 20429], ['+14155550143', 429, 20429]]);
  assert.deepStrictEqual(log.filter((e) => e.status === 429).map((e) => e.fault), ['concurrency_limit', 'concurrency_limit']);
  assert.strictEqual((await emu.control('GET', 'limits')).limited, 2);
  // the slots are free again: the refused purchase now goes through
  await emu.control('DELETE', 'faults');
  assert.strictEqual((await buy('+14155550142')).status, 201);
});

test('a hung request holds its slot until its connection closes', async () => {
  await emu.control('POST', 'limits', { concurrent_requests: 1 });
  await emu.control('POST', 'faults', { path: 'Trunks', action: 'hang' });
  await assert.rejects(emu.req('GET', '/v1/Trunks', { timeout: 300 }), (e) => e.code === 'ETIMEDOUT');
  for (let i = 0; i < 100 && (await emu.control('GET', 'limits')).in_flight > 0; i++) await sleep(20);
  assert.strictEqual((await emu.control('GET', 'limits')).in_flight, 0);
  assert.strictEqual((await emu.req('GET', '/v1/Trunks')).status, 200);
});

test('limits: bad values refused; 0 means none; reset returns to the command line', async () => {
  for (const bad of [-1, 1.5, 'x']) {
    const r = await emu.req('POST', '/_emulator/limits', { json: { concurrent_requests: bad }, auth: false });
    assert.strictEqual(r.status, 400, String(bad));
  }
  await emu.control('POST', 'limits', { concurrent_requests: 1 });
  await emu.control('POST', 'reset');
  assert.strictEqual((await emu.control('GET', 'limits')).concurrent_requests, 0);
  const limited = await startEmulator(['--concurrency-limit', '1']);
  try {
    assert.strictEqual((await limited.control('GET', 'limits')).concurrent_requests, 1);
    await limited.control('POST', 'limits', { concurrent_requests: 0 });
    await limited.control('POST', 'reset');
    assert.strictEqual((await limited.control('GET', 'limits')).concurrent_requests, 1);
    await limited.control('POST', 'faults', { method: 'POST', path: 'IncomingPhoneNumbers', action: 'latency', ms: 1500 });
    const slow = buy('+14155550144', limited);
    for (let i = 0; i < 100 && (await limited.control('GET', 'limits')).in_flight < 1; i++) await sleep(20);
    assertTwilioError(assert, await buy('+14155550145', limited), 429, 20429);
    assert.strictEqual((await slow).status, 201);
    assert.deepStrictEqual(await owned(limited), ['+14155550144']);
  } finally {
    await limited.stop();
  }
  const r = await new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, '--port', '0', '--account-sid', ACCOUNT, '--auth-token', 't',
      '--concurrency-limit', 'many'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    child.on('exit', (code) => resolve({ code, err }));
  });
  assert.strictEqual(r.code, 2);
  assert.match(r.err, /--concurrency-limit/);
});
