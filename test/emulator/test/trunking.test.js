'use strict';
// Trunks and their PhoneNumbers (SIP Trunking v1); the association seen from both sides.
const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert');
const { startEmulator, assertTwilioError, ACCOUNT } = require('./helpers');

let emu;
before(async () => { emu = await startEmulator(); });
after(() => emu.stop());
beforeEach(() => emu.control('POST', 'reset'));

const newTrunk = async (form = {}) => (await emu.req('POST', '/v1/Trunks', { form })).json;
const buy = async (phone, form = {}) => (await emu.api('POST', '/IncomingPhoneNumbers.json', { form: { PhoneNumber: phone, ...form } })).json;

test('trunk create, fetch, list, update, delete', async () => {
  const res = await emu.req('POST', '/v1/Trunks', { form: { FriendlyName: 'PBX', DomainName: 'acme.pstn.twilio.com', Secure: 'true' } });
  assert.strictEqual(res.status, 201);
  const t = res.json;
  assert.match(t.sid, /^TK[0-9a-f]{32}$/);
  assert.strictEqual(t.account_sid, ACCOUNT);
  assert.strictEqual(t.secure, true);
  assert.strictEqual(t.transfer_mode, 'disable-all');
  assert.match(t.date_created, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
  assert.strictEqual(t.url, `${emu.base}/v1/Trunks/${t.sid}`);
  assert.strictEqual(t.links.phone_numbers, `${emu.base}/v1/Trunks/${t.sid}/PhoneNumbers`);
  assert.deepStrictEqual((await emu.req('GET', `/v1/Trunks/${t.sid}`)).json, t);
  assertTwilioError(assert, await emu.req('POST', '/v1/Trunks', { form: { DomainName: 'acme.pstn.twilio.com' } }), 400, 400);
  assertTwilioError(assert, await emu.req('POST', '/v1/Trunks', { form: { DomainName: 'acme.example.com' } }), 400, 400);
  const t2 = await newTrunk({ FriendlyName: 'second' });
  const list = await emu.req('GET', '/v1/Trunks', { query: { PageSize: '1' } });
  assert.deepStrictEqual(list.json.trunks.map((x) => x.sid), [t.sid]);
  assert.strictEqual(list.json.meta.key, 'trunks');
  const next = await emu.req('GET', list.json.meta.next_page_url.replace(emu.base, ''));
  assert.deepStrictEqual(next.json.trunks.map((x) => x.sid), [t2.sid]);
  assert.strictEqual(next.json.meta.next_page_url, null);
  const up = await emu.req('POST', `/v1/Trunks/${t.sid}`, { form: { FriendlyName: 'PBX 2', TransferMode: 'sip-only' } });
  assert.strictEqual(up.json.friendly_name, 'PBX 2');
  assert.strictEqual(up.json.transfer_mode, 'sip-only');
  assertTwilioError(assert, await emu.req('POST', `/v1/Trunks/${t.sid}`, { form: { TransferMode: 'all' } }), 400, 400);
  assert.strictEqual((await emu.req('DELETE', `/v1/Trunks/${t2.sid}`)).status, 204);
  assertTwilioError(assert, await emu.req('GET', `/v1/Trunks/${t2.sid}`), 404, 20404);
});

test('associate a number: visible as trunk_sid and in the trunk list; remove clears both', async () => {
  const t = await newTrunk();
  const n = await buy('+14155550160');
  const res = await emu.req('POST', `/v1/Trunks/${t.sid}/PhoneNumbers`, { form: { PhoneNumberSid: n.sid } });
  assert.strictEqual(res.status, 201, res.text);
  const tn = res.json;
  assert.strictEqual(tn.sid, n.sid);
  assert.strictEqual(tn.trunk_sid, t.sid);
  assert.strictEqual(tn.phone_number, '+14155550160');
  assert.deepStrictEqual(Object.keys(tn.capabilities), ['voice', 'sms', 'mms', 'fax']);
  assert.strictEqual(tn.links.phone_number, `${emu.base}/2010-04-01/Accounts/${ACCOUNT}/IncomingPhoneNumbers/${n.sid}.json`);
  assert.strictEqual(tn.url, `${emu.base}/v1/Trunks/${t.sid}/PhoneNumbers/${n.sid}`);
  assert.strictEqual((await emu.api('GET', `/IncomingPhoneNumbers/${n.sid}.json`)).json.trunk_sid, t.sid);
  assert.deepStrictEqual((await emu.req('GET', `/v1/Trunks/${t.sid}/PhoneNumbers/${n.sid}`)).json, tn);
  const list = await emu.req('GET', `/v1/Trunks/${t.sid}/PhoneNumbers`);
  assert.deepStrictEqual(list.json.phone_numbers.map((x) => x.sid), [n.sid]);
  assert.strictEqual(list.json.meta.key, 'phone_numbers');
  assert.strictEqual((await emu.req('DELETE', `/v1/Trunks/${t.sid}/PhoneNumbers/${n.sid}`)).status, 204);
  assert.strictEqual((await emu.api('GET', `/IncomingPhoneNumbers/${n.sid}.json`)).json.trunk_sid, null);
  assert.deepStrictEqual((await emu.req('GET', `/v1/Trunks/${t.sid}/PhoneNumbers`)).json.phone_numbers, []);
  assertTwilioError(assert, await emu.req('GET', `/v1/Trunks/${t.sid}/PhoneNumbers/${n.sid}`), 404, 20404);
  assertTwilioError(assert, await emu.req('DELETE', `/v1/Trunks/${t.sid}/PhoneNumbers/${n.sid}`), 404, 20404);
});

test('buying with TrunkSid associates; updating TrunkSid moves or clears; unknown trunk is 404', async () => {
  const a = await newTrunk();
  const b = await newTrunk();
  const n = await buy('+13125550170', { TrunkSid: a.sid });
  assert.strictEqual(n.trunk_sid, a.sid);
  assert.deepStrictEqual((await emu.req('GET', `/v1/Trunks/${a.sid}/PhoneNumbers`)).json.phone_numbers.map((x) => x.phone_number), ['+13125550170']);
  const moved = await emu.api('POST', `/IncomingPhoneNumbers/${n.sid}.json`, { form: { TrunkSid: b.sid } });
  assert.strictEqual(moved.json.trunk_sid, b.sid);
  assert.deepStrictEqual((await emu.req('GET', `/v1/Trunks/${a.sid}/PhoneNumbers`)).json.phone_numbers, []);
  const app = await emu.api('POST', `/IncomingPhoneNumbers/${n.sid}.json`, { form: { VoiceApplicationSid: 'AP0123456789abcdef0123456789abcdef' } });
  assert.strictEqual(app.json.trunk_sid, null); // a voice application replaces the trunk
  await emu.api('POST', `/IncomingPhoneNumbers/${n.sid}.json`, { form: { TrunkSid: a.sid } });
  const cleared = await emu.api('POST', `/IncomingPhoneNumbers/${n.sid}.json`, { form: { TrunkSid: '' } });
  assert.strictEqual(cleared.json.trunk_sid, null);
  assertTwilioError(assert, await emu.api('POST', '/IncomingPhoneNumbers.json',
    { form: { PhoneNumber: '+13125550171', TrunkSid: 'TK99999999999999999999999999999999' } }), 404, 20404);
  assertTwilioError(assert, await emu.req('POST', `/v1/Trunks/${a.sid}/PhoneNumbers`,
    { form: { PhoneNumberSid: 'PN99999999999999999999999999999999' } }), 404, 20404);
  assertTwilioError(assert, await emu.req('POST', `/v1/Trunks/${a.sid}/PhoneNumbers`, { form: {} }), 400, 400);
});

test('releasing a number removes its trunk association; deleting a trunk clears trunk_sid', async () => {
  const t = await newTrunk();
  const n = await buy('+16175550180', { TrunkSid: t.sid });
  const m = await buy('+16175550181', { TrunkSid: t.sid });
  await emu.api('DELETE', `/IncomingPhoneNumbers/${n.sid}.json`);
  assert.deepStrictEqual((await emu.req('GET', `/v1/Trunks/${t.sid}/PhoneNumbers`)).json.phone_numbers.map((x) => x.sid), [m.sid]);
  const again = await buy('+16175550180');
  assert.strictEqual(again.trunk_sid, null);
  await emu.req('DELETE', `/v1/Trunks/${t.sid}`);
  assert.strictEqual((await emu.api('GET', `/IncomingPhoneNumbers/${m.sid}.json`)).json.trunk_sid, null);
  const state = await emu.control('GET', 'state');
  assert.deepStrictEqual(state.trunks, []);
});

test('trunks belong to the account that created them', async () => {
  const sub = (await emu.req('POST', '/2010-04-01/Accounts.json', { form: {} })).json;
  const t = await newTrunk();
  assertTwilioError(assert, await emu.req('GET', `/v1/Trunks/${t.sid}`, { auth: [sub.sid, sub.auth_token] }), 404, 20404);
  assert.deepStrictEqual((await emu.req('GET', '/v1/Trunks', { auth: [sub.sid, sub.auth_token] })).json.trunks, []);
});
