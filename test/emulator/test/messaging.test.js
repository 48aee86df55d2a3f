'use strict';
// Messaging Services and their sender pools: the resources, Twilio's rules for
// adding a number (21710, 21712, 21714, 21715, 404), what a release, a
// transfer and a service's deletion do to the pool; and emergency addresses on
// IncomingPhoneNumbers, which hold a release up until removed.
const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert');
const { startEmulator, assertTwilioError, ACCOUNT } = require('./helpers');

let emu;
before(async () => { emu = await startEmulator(); });
after(() => emu.stop());
beforeEach(() => emu.control('POST', 'reset'));

const newService = async (form = { FriendlyName: 'Acme SMS' }) => (await emu.req('POST', '/v1/Services', { form })).json;
const buy = async (phone, form = {}) => (await emu.api('POST', '/IncomingPhoneNumbers.json', { form: { PhoneNumber: phone, ...form } })).json;
const add = (svc, pn, opts = {}) => emu.req('POST', `/v1/Services/${svc}/PhoneNumbers`, { form: { PhoneNumberSid: pn }, ...opts });
const pool = async (svc) => (await emu.req('GET', `/v1/Services/${svc}/PhoneNumbers`, { query: { PageSize: '1000' } })).json.phone_numbers.map((x) => x.phone_number);
const available = async (country, type, query) => (await emu.api('GET', `/AvailablePhoneNumbers/${country}/${type}.json`, { query })).json.available_phone_numbers;

const SERVICE_FIELDS = ['account_sid', 'area_code_geomatch', 'date_created', 'date_updated', 'fallback_method',
  'fallback_to_long_code', 'fallback_url', 'friendly_name', 'inbound_method', 'inbound_request_url', 'links',
  'mms_converter', 'scan_message_content', 'sid', 'smart_encoding', 'status_callback', 'sticky_sender',
  'synchronous_validation', 'url', 'us_app_to_person_registered', 'use_inbound_webhook_on_number', 'usecase',
  'validity_period'];

test('service create, fetch, list, update, delete', async () => {
  const res = await emu.req('POST', '/v1/Services', { form: { FriendlyName: 'Acme SMS', InboundRequestUrl: 'https://app.example.com/in', Usecase: 'notifications' } });
  assert.strictEqual(res.status, 201, res.text);
  const s = res.json;
  assert.deepStrictEqual(Object.keys(s).sort(), SERVICE_FIELDS);
  assert.match(s.sid, /^MG[0-9a-f]{32}$/);
  assert.strictEqual(s.account_sid, ACCOUNT);
  assert.strictEqual(s.friendly_name, 'Acme SMS');
  assert.strictEqual(s.inbound_request_url, 'https://app.example.com/in');
  assert.strictEqual(s.usecase, 'notifications');
  assert.match(s.date_created, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
  assert.strictEqual(s.url, `${emu.base}/v1/Services/${s.sid}`);
  assert.strictEqual(s.links.phone_numbers, `${emu.base}/v1/Services/${s.sid}/PhoneNumbers`);
  assert.deepStrictEqual((await emu.req('GET', `/v1/Services/${s.sid}`)).json, s);
  assertTwilioError(assert, await emu.req('POST', '/v1/Services', { form: {} }), 400, 400);
  assertTwilioError(assert, await emu.req('POST', '/v1/Services', { form: { FriendlyName: 'x', Usecase: 'spam' } }), 400, 400);
  assertTwilioError(assert, await emu.req('POST', '/v1/Services', { form: { FriendlyName: 'x', ValidityPeriod: '0' } }), 400, 400);
  const s2 = await newService({ FriendlyName: 'second' });
  const list = await emu.req('GET', '/v1/Services', { query: { PageSize: '1' } });
  assert.deepStrictEqual(list.json.services.map((x) => x.sid), [s.sid]);
  assert.strictEqual(list.json.meta.key, 'services');
  const next = await emu.req('GET', list.json.meta.next_page_url.replace(emu.base, ''));
  assert.deepStrictEqual(next.json.services.map((x) => x.sid), [s2.sid]);
  assert.strictEqual(next.json.meta.next_page_url, null);
  const up = await emu.req('POST', `/v1/Services/${s.sid}`, { form: { FriendlyName: 'Acme 2', StickySender: 'false' } });
  assert.strictEqual(up.json.friendly_name, 'Acme 2');
  assert.strictEqual(up.json.sticky_sender, false);
  assert.strictEqual((await emu.req('DELETE', `/v1/Services/${s2.sid}`)).status, 204);
  assertTwilioError(assert, await emu.req('GET', `/v1/Services/${s2.sid}`), 404, 20404);
  assertTwilioError(assert, await emu.req('DELETE', `/v1/Services/${s2.sid}`), 404, 20404);
});

test('add a number, list, fetch, remove', async () => {
  const s = await newService();
  const n = await buy('+14155550160');
  const res = await add(s.sid, n.sid);
  assert.strictEqual(res.status, 201, res.text);
  const p = res.json;
  assert.deepStrictEqual(Object.keys(p).sort(), ['account_sid', 'capabilities', 'country_code', 'date_created',
    'date_updated', 'phone_number', 'service_sid', 'sid', 'url']);
  assert.strictEqual(p.sid, n.sid);
  assert.strictEqual(p.service_sid, s.sid);
  assert.strictEqual(p.phone_number, '+14155550160');
  assert.strictEqual(p.country_code, 'US');
  assert.ok(p.capabilities.includes('SMS') && p.capabilities.includes('Voice'), JSON.stringify(p.capabilities));
  assert.strictEqual(p.url, `${emu.base}/v1/Services/${s.sid}/PhoneNumbers/${n.sid}`);
  assert.deepStrictEqual((await emu.req('GET', `/v1/Services/${s.sid}/PhoneNumbers/${n.sid}`)).json, p);
  const list = await emu.req('GET', `/v1/Services/${s.sid}/PhoneNumbers`);
  assert.deepStrictEqual(list.json.phone_numbers, [p]);
  assert.strictEqual(list.json.meta.key, 'phone_numbers');
  assert.strictEqual((await emu.req('DELETE', `/v1/Services/${s.sid}/PhoneNumbers/${n.sid}`)).status, 204);
  assert.deepStrictEqual(await pool(s.sid), []);
  assertTwilioError(assert, await emu.req('GET', `/v1/Services/${s.sid}/PhoneNumbers/${n.sid}`), 404, 20404);
  assertTwilioError(assert, await emu.req('DELETE', `/v1/Services/${s.sid}/PhoneNumbers/${n.sid}`), 404, 20404);
  // the number can join again once out
  assert.strictEqual((await add(s.sid, n.sid)).status, 201);
});

test("Twilio's rules: one service per number, SMS needed, 400 at most, the account's own numbers", async () => {
  const a = await newService();
  const b = await newService({ FriendlyName: 'other' });
  const n = await buy('+13125550170');
  assert.strictEqual((await add(a.sid, n.sid)).status, 201);
  assertTwilioError(assert, await add(a.sid, n.sid), 400, 21710);
  assertTwilioError(assert, await add(b.sid, n.sid), 400, 21712);
  assert.deepStrictEqual(await pool(b.sid), []);
  const noSms = (await available('US', 'Local', { SmsEnabled: 'false', PageSize: '1' }))[0];
  const v = await buy(noSms.phone_number);
  assertTwilioError(assert, await add(b.sid, v.sid), 400, 21715);
  assertTwilioError(assert, await add(b.sid, 'PN99999999999999999999999999999999'), 404, 20404);
  assertTwilioError(assert, await add(b.sid, 'PN12'), 400, 400);
  assertTwilioError(assert, await emu.req('POST', `/v1/Services/${b.sid}/PhoneNumbers`, { form: {} }), 400, 400);
  assertTwilioError(assert, await add('MG99999999999999999999999999999999', n.sid), 404, 20404);
  // another account's number is not found; another account's service neither
  const sub = (await emu.req('POST', '/2010-04-01/Accounts.json', { form: {} })).json;
  const theirs = (await emu.api('POST', '/IncomingPhoneNumbers.json', { account: sub.sid, form: { PhoneNumber: '+13125550171' } })).json;
  assertTwilioError(assert, await add(b.sid, theirs.sid), 404, 20404);
  assertTwilioError(assert, await emu.req('GET', `/v1/Services/${a.sid}`, { auth: [sub.sid, sub.auth_token] }), 404, 20404);
  // the pool limit: 400 numbers
  const c = await newService({ FriendlyName: 'big' });
  const sms = [];
  for (const ac of ['212', '415', '617', '646']) sms.push(...(await available('US', 'Local', { AreaCode: ac, SmsEnabled: 'true', PageSize: '110' })));
  assert.ok(sms.length >= 401, `${sms.length} SMS-capable numbers`);
  for (const x of sms.slice(0, 400)) {
    const r = await add(c.sid, (await buy(x.phone_number)).sid);
    assert.strictEqual(r.status, 201, r.text);
  }
  const extra = await buy(sms[400].phone_number);
  const full = await add(c.sid, extra.sid);
  assertTwilioError(assert, full, 400, 21714);
  assert.strictEqual((await pool(c.sid)).length, 400);
  // one out, one in
  const first = (await emu.req('GET', `/v1/Services/${c.sid}/PhoneNumbers`, { query: { PageSize: '1' } })).json.phone_numbers[0];
  assert.strictEqual((await emu.req('DELETE', `/v1/Services/${c.sid}/PhoneNumbers/${first.sid}`)).status, 204);
  assert.strictEqual((await add(c.sid, extra.sid)).status, 201);
});

test('a release drops the number from its pool; a transfer too; deleting the service empties it', async () => {
  const s = await newService();
  const n = await buy('+16175550180');
  const m = await buy('+16175550181');
  await add(s.sid, n.sid);
  await add(s.sid, m.sid);
  assert.strictEqual((await emu.api('DELETE', `/IncomingPhoneNumbers/${n.sid}.json`)).status, 204);
  assert.deepStrictEqual(await pool(s.sid), ['+16175550181']);
  const sub = (await emu.req('POST', '/2010-04-01/Accounts.json', { form: {} })).json;
  await emu.api('POST', `/IncomingPhoneNumbers/${m.sid}.json`, { form: { AccountSid: sub.sid } });
  assert.deepStrictEqual(await pool(s.sid), []);
  const k = await buy('+16175550182');
  await add(s.sid, k.sid);
  const state = await emu.control('GET', 'state');
  assert.deepStrictEqual(state.messaging_services.map((x) => [x.sid, x.phone_numbers]), [[s.sid, ['+16175550182']]]);
  assert.strictEqual(state.numbers.find((x) => x.sid === k.sid).messaging_service_sid, s.sid);
  await emu.req('DELETE', `/v1/Services/${s.sid}`);
  const t = await newService();
  assert.strictEqual((await add(t.sid, k.sid)).status, 201); // no longer in the deleted one
});

test('emergency address: set, registered, cleared; a registered one holds the release up', async () => {
  const n = await buy('+16465550190', { EmergencyAddressSid: 'AD0123456789abcdef0123456789abcdef' });
  assert.strictEqual(n.emergency_address_sid, 'AD0123456789abcdef0123456789abcdef');
  assert.strictEqual(n.emergency_address_status, 'registered');
  const path = `/IncomingPhoneNumbers/${n.sid}.json`;
  const refused = await emu.api('DELETE', path);
  assertTwilioError(assert, refused, 400, 400);
  assert.match(refused.json.message, /emergency address/);
  assert.strictEqual((await emu.api('GET', path)).status, 200);
  const cleared = await emu.api('POST', path, { form: { EmergencyAddressSid: '' } });
  assert.strictEqual(cleared.json.emergency_address_sid, null);
  assert.strictEqual(cleared.json.emergency_address_status, 'unregistered');
  assert.strictEqual((await emu.api('DELETE', path)).status, 204);
  // Twilio's registration moves on its own (the control plays Twilio)
  const m = await buy('+16465550192', { EmergencyAddressSid: 'AD0123456789abcdef0123456789abcdef' });
  const mpath = `/IncomingPhoneNumbers/${m.sid}.json`;
  const moved = await emu.control('POST', `numbers/${m.sid}`, { emergency_address_status: 'registration-failure' });
  assert.strictEqual(moved.emergency_address_status, 'registration-failure');
  assert.strictEqual((await emu.api('GET', mpath)).json.emergency_address_status, 'registration-failure');
  const pending = await emu.control('POST', `numbers/${m.sid}`, { emergency_address_status: 'pending-registration' });
  assert.strictEqual(pending.emergency_address_status, 'pending-registration');
  assertTwilioError(assert, await emu.api('DELETE', mpath), 400, 400); // pending holds the release up too
  const bad = await emu.req('POST', `/_emulator/numbers/${m.sid}`, { json: { emergency_address_status: 'done' }, auth: false });
  assert.strictEqual(bad.status, 400);
  const none = await emu.req('POST', '/_emulator/numbers/PN99999999999999999999999999999999', { json: {}, auth: false });
  assert.strictEqual(none.status, 404);
  await emu.api('POST', mpath, { form: { EmergencyAddressSid: '' } });
  assert.strictEqual((await emu.api('DELETE', mpath)).status, 204);
  const plain = await buy('+16465550191');
  assert.strictEqual(plain.emergency_address_status, 'unregistered');
  assert.strictEqual((await emu.api('DELETE', `/IncomingPhoneNumbers/${plain.sid}.json`)).status, 204);
});
