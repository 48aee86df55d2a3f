'use strict';
// Hosted number orders (Numbers v2) and pricing v1.
const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert');
const { startEmulator, assertTwilioError, ACCOUNT } = require('./helpers');

let emu;
before(async () => { emu = await startEmulator(); });
after(() => emu.stop());
beforeEach(() => emu.control('POST', 'reset'));

const ORDER = { PhoneNumber: '+15017122661', ContactPhoneNumber: '+15017122662', AddressSid: 'AD0123456789abcdef0123456789abcdef',
  Email: 'owner@example.com' };
const create = async (form = {}) => emu.req('POST', '/v2/HostedNumber/Orders', { form: { ...ORDER, ...form } });
const move = (sid, status, extra = {}) => emu.control('POST', `hosted/${sid}`, { status, ...extra });
const ORDER_FIELDS = ['account_sid', 'address_sid', 'bulk_hosting_request_sid', 'capabilities', 'cc_emails', 'contact_phone_number',
  'contact_title', 'date_created', 'date_updated', 'email', 'failure_reason', 'friendly_name', 'incoming_phone_number_sid',
  'next_step', 'phone_number', 'signing_document_sid', 'sid', 'status', 'url', 'verification_attempts',
  'verification_call_delay', 'verification_call_extension', 'verification_call_sids', 'verification_code', 'verification_type'];

test('create an order: received, every field, repeated CcEmails', async () => {
  const res = await create({ FriendlyName: 'Main line', CcEmails: ['a@example.com', 'b@example.com'], SmsUrl: 'https://example.com/sms' });
  assert.strictEqual(res.status, 201, res.text);
  const o = res.json;
  assert.deepStrictEqual(Object.keys(o).sort(), [...ORDER_FIELDS].sort());
  assert.match(o.sid, /^HR[0-9a-f]{32}$/);
  assert.strictEqual(o.status, 'received');
  assert.strictEqual(o.account_sid, ACCOUNT);
  assert.deepStrictEqual(o.cc_emails, ['a@example.com', 'b@example.com']);
  assert.deepStrictEqual(o.capabilities, { sms: true, voice: false });
  assert.strictEqual(o.incoming_phone_number_sid, null);
  assert.strictEqual(o.url, `${emu.base}/v2/HostedNumber/Orders/${o.sid}`);
  assert.deepStrictEqual((await emu.req('GET', `/v2/HostedNumber/Orders/${o.sid}`)).json, o);
});

test('create refusals: missing fields, bad numbers, number already on Twilio or in an order', async () => {
  for (const missing of ['PhoneNumber', 'ContactPhoneNumber', 'AddressSid', 'Email']) {
    assertTwilioError(assert, await create({ [missing]: '' }), 400, 400);
  }
  assertTwilioError(assert, await create({ PhoneNumber: '5017122661' }), 400, 21421);
  assertTwilioError(assert, await create({ PhoneNumber: '+442079460001' }), 400, 21421);
  await create();
  assertTwilioError(assert, await create(), 400, 21422);
  assertTwilioError(assert, await create({ PhoneNumber: '+14155550199' }), 400, 21422); // in Twilio's inventory
  await emu.api('POST', '/IncomingPhoneNumbers.json', { form: { PhoneNumber: '+14155550199' } });
  assertTwilioError(assert, await create({ PhoneNumber: '+14155550199' }), 400, 21422); // owned
});

test('the life cycle to completed creates a hosted IncomingPhoneNumber', async () => {
  const o = (await create({ SmsUrl: 'https://example.com/sms', FriendlyName: 'Hosted main' })).json;
  const verify = await emu.req('POST', `/v2/HostedNumber/Orders/${o.sid}`, { form: { Status: 'pending-verification', VerificationCallDelay: '15' } });
  assert.strictEqual(verify.status, 200, verify.text);
  assert.strictEqual(verify.json.status, 'pending-verification');
  assert.strictEqual(verify.json.verification_attempts, 1);
  assert.match(verify.json.verification_code, /^\d{4}$/);
  assert.strictEqual(verify.json.verification_call_sids.length, 1);
  assert.strictEqual(verify.json.verification_call_delay, 15);
  for (const s of ['verified', 'pending-loa', 'carrier-processing', 'testing']) await move(o.sid, s);
  let cur = (await emu.req('GET', `/v2/HostedNumber/Orders/${o.sid}`)).json;
  assert.strictEqual(cur.status, 'testing');
  assert.match(cur.signing_document_sid, /^PX[0-9a-f]{32}$/);
  const done = await move(o.sid, 'completed');
  assert.match(done.incoming_phone_number_sid, /^PN[0-9a-f]{32}$/);
  cur = (await emu.req('GET', `/v2/HostedNumber/Orders/${o.sid}`)).json;
  assert.strictEqual(cur.status, 'completed');
  assert.strictEqual(cur.incoming_phone_number_sid, done.incoming_phone_number_sid);
  const n = (await emu.api('GET', `/IncomingPhoneNumbers/${done.incoming_phone_number_sid}.json`)).json;
  assert.strictEqual(n.origin, 'hosted');
  assert.strictEqual(n.phone_number, '+15017122661');
  assert.strictEqual(n.sms_url, 'https://example.com/sms');
  assert.strictEqual(n.friendly_name, 'Hosted main');
  assert.deepStrictEqual(n.capabilities, { voice: false, sms: true, mms: false, fax: false });
  const hosted = await emu.api('GET', '/IncomingPhoneNumbers.json', { query: { Origin: 'hosted' } });
  assert.deepStrictEqual(hosted.json.incoming_phone_numbers.map((x) => x.sid), [n.sid]);
  // completed is final: the control refuses to move it on (as Twilio's staff cannot)
  const back = await emu.req('POST', `/_emulator/hosted/${o.sid}`, { json: { status: 'testing' }, auth: false });
  assert.strictEqual(back.status, 400);
  assert.strictEqual((await emu.req('GET', `/v2/HostedNumber/Orders/${o.sid}`)).json.status, 'completed');
  // a completed order cannot be canceled; the number is released through IncomingPhoneNumbers
  assertTwilioError(assert, await emu.req('DELETE', `/v2/HostedNumber/Orders/${o.sid}`), 400, 400);
  assert.strictEqual((await emu.api('DELETE', `/IncomingPhoneNumbers/${n.sid}.json`)).status, 204);
  const avail = await emu.api('GET', '/AvailablePhoneNumbers/US/Local.json', { query: { Contains: '+15017122661$' } });
  assert.deepStrictEqual(avail.json.available_phone_numbers, []); // hosted numbers never join Twilio's inventory
});

test('user updates: only pending-verification, at most three attempts', async () => {
  const o = (await create()).json;
  assertTwilioError(assert, await emu.req('POST', `/v2/HostedNumber/Orders/${o.sid}`, { form: { Status: 'verified' } }), 400, 400);
  assertTwilioError(assert, await emu.req('POST', `/v2/HostedNumber/Orders/${o.sid}`, { form: {} }), 400, 400);
  assertTwilioError(assert, await emu.req('POST', `/v2/HostedNumber/Orders/${o.sid}`,
    { form: { Status: 'pending-verification', VerificationCallDelay: '61' } }), 400, 400);
  let last;
  for (let i = 0; i < 4; i++) last = await emu.req('POST', `/v2/HostedNumber/Orders/${o.sid}`, { form: { Status: 'pending-verification' } });
  assert.strictEqual(last.json.status, 'action-required');
  assert.strictEqual(last.json.verification_attempts, 4);
  assert.ok(last.json.failure_reason);
});

test('cancel only in received, pending-verification, verified, pending-loa', async () => {
  for (const [status, allowed] of [['received', true], ['pending-verification', true], ['verified', true], ['pending-loa', true],
    ['carrier-processing', false], ['testing', false], ['failed', false], ['action-required', false]]) {
    await emu.control('POST', 'reset');
    const o = (await create()).json;
    if (status !== 'received') await move(o.sid, status);
    const res = await emu.req('DELETE', `/v2/HostedNumber/Orders/${o.sid}`);
    if (allowed) {
      assert.strictEqual(res.status, 204, status);
      assertTwilioError(assert, await emu.req('GET', `/v2/HostedNumber/Orders/${o.sid}`), 404, 20404);
    } else {
      assertTwilioError(assert, res, 400, 400);
      assert.strictEqual((await emu.req('GET', `/v2/HostedNumber/Orders/${o.sid}`)).json.status, status);
    }
  }
});

test('list filters and paging; failed orders carry a reason; bad control status', async () => {
  const a = (await create({ FriendlyName: 'A' })).json;
  const b = (await create({ PhoneNumber: '+15017122663', FriendlyName: 'B' })).json;
  const c = (await create({ PhoneNumber: '+15017122664', SmsCapability: 'false' })).json;
  await move(b.sid, 'failed', { failure_reason: 'The number is currently SMS enabled' });
  const q = async (query) => (await emu.req('GET', '/v2/HostedNumber/Orders', { query })).json.items.map((o) => o.sid);
  assert.deepStrictEqual(await q({}), [a.sid, b.sid, c.sid]);
  assert.deepStrictEqual(await q({ Status: 'failed' }), [b.sid]);
  assert.deepStrictEqual(await q({ FriendlyName: 'A' }), [a.sid]);
  assert.deepStrictEqual(await q({ PhoneNumber: '+15017122664' }), [c.sid]);
  assert.deepStrictEqual(await q({ SmsCapability: 'false' }), [c.sid]);
  assertTwilioError(assert, await emu.req('GET', '/v2/HostedNumber/Orders', { query: { Status: 'done' } }), 400, 400);
  const page = await emu.req('GET', '/v2/HostedNumber/Orders', { query: { PageSize: '2' } });
  assert.strictEqual(page.json.meta.key, 'items');
  const next = await emu.req('GET', page.json.meta.next_page_url.replace(emu.base, ''));
  assert.deepStrictEqual(next.json.items.map((o) => o.sid), [c.sid]);
  assert.strictEqual((await emu.req('GET', `/v2/HostedNumber/Orders/${b.sid}`)).json.failure_reason, 'The number is currently SMS enabled');
  const refailed = await emu.req('POST', `/_emulator/hosted/${b.sid}`, { json: { status: 'received' }, auth: false });
  assert.strictEqual(refailed.status, 400); // failed is final too
  const bad = await emu.req('POST', `/_emulator/hosted/${a.sid}`, { json: { status: 'done' }, auth: false });
  assert.strictEqual(bad.status, 400);
  const missing = await emu.req('POST', '/_emulator/hosted/HR00000000000000000000000000000000', { json: { status: 'completed' }, auth: false });
  assert.strictEqual(missing.status, 404);
});

test('pricing: countries paged with meta, prices as strings, toll free with a space, 404 for unknown', async () => {
  const first = await emu.req('GET', '/v1/PhoneNumbers/Countries', { query: { PageSize: '4' } });
  assert.strictEqual(first.status, 200);
  assert.strictEqual(first.json.countries.length, 4);
  assert.strictEqual(first.json.meta.key, 'countries');
  assert.strictEqual(first.json.meta.page_size, 4);
  const all = [...first.json.countries];
  let next = first.json.meta.next_page_url;
  while (next) {
    const res = await emu.req('GET', next.replace(emu.base, ''));
    all.push(...res.json.countries);
    next = res.json.meta.next_page_url;
  }
  assert.strictEqual(all.length, 10);
  assert.deepStrictEqual(all.map((c) => c.country), [...all.map((c) => c.country)].sort());
  assert.ok(all.every((c) => c.url === `${emu.base}/v1/PhoneNumbers/Countries/${c.iso_country}`));
  const us = (await emu.req('GET', '/v1/PhoneNumbers/Countries/US')).json;
  assert.deepStrictEqual(us, {
    country: 'United States', iso_country: 'US',
    phone_number_prices: [{ number_type: 'local', base_price: '1.15', current_price: '1.15' },
      { number_type: 'toll free', base_price: '2.15', current_price: '2.15' }],
    price_unit: 'USD', url: `${emu.base}/v1/PhoneNumbers/Countries/US`,
  });
  assert.strictEqual((await emu.req('GET', '/v1/PhoneNumbers/Countries/DE')).json.price_unit, 'usd');
  assertTwilioError(assert, await emu.req('GET', '/v1/PhoneNumbers/Countries/ZZ'), 404, 20404);
});
