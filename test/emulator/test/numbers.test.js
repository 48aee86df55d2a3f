'use strict';
// IncomingPhoneNumbers: buying (by number, by area code, per type), the
// refusals, configuration, the owned list and its paging, release, transfer
// to a subaccount, subaccounts and authentication.
const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert');
const { startEmulator, assertTwilioError, ACCOUNT, TOKEN, API_KEY, API_SECRET } = require('./helpers');

let emu;
before(async () => { emu = await startEmulator(); });
after(() => emu.stop());
beforeEach(() => emu.control('POST', 'reset'));

const buy = (form, account, path = '/IncomingPhoneNumbers.json', auth) => emu.api('POST', path, { form, account, auth });
const available = async (country, type, query) => (await emu.api('GET', `/AvailablePhoneNumbers/${country}/${type}.json`, { query })).json.available_phone_numbers;
const INCOMING_FIELDS = ['account_sid', 'address_requirements', 'address_sid', 'api_version', 'beta', 'bundle_sid',
  'capabilities', 'date_created', 'date_updated', 'emergency_address_sid', 'emergency_address_status', 'emergency_status',
  'friendly_name', 'identity_sid', 'origin', 'phone_number', 'sid', 'sms_application_sid', 'sms_fallback_method',
  'sms_fallback_url', 'sms_method', 'sms_url', 'status', 'status_callback', 'status_callback_method', 'subresource_uris',
  'trunk_sid', 'type', 'uri', 'voice_application_sid', 'voice_caller_id_lookup', 'voice_fallback_method',
  'voice_fallback_url', 'voice_method', 'voice_receive_mode', 'voice_url'];

test('buying a number returns the full IncomingPhoneNumber and removes it from the inventory', async () => {
  const res = await buy({ PhoneNumber: '+14155550123', FriendlyName: 'Support', VoiceUrl: 'https://example.com/v', SmsMethod: 'GET' });
  assert.strictEqual(res.status, 201, res.text);
  const n = res.json;
  assert.deepStrictEqual(Object.keys(n).sort(), [...INCOMING_FIELDS].sort());
  assert.match(n.sid, /^PN[0-9a-f]{32}$/);
  assert.strictEqual(n.account_sid, ACCOUNT);
  assert.strictEqual(n.phone_number, '+14155550123');
  assert.strictEqual(n.friendly_name, 'Support');
  assert.strictEqual(n.voice_url, 'https://example.com/v');
  assert.strictEqual(n.sms_method, 'GET');
  assert.strictEqual(n.voice_method, 'POST');
  assert.strictEqual(n.sms_url, null);
  assert.strictEqual(n.origin, 'twilio');
  assert.strictEqual(n.status, 'in-use');
  assert.strictEqual(n.type, 'local');
  assert.deepStrictEqual(Object.keys(n.capabilities), ['voice', 'sms', 'mms', 'fax']);
  assert.match(n.date_created, /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
  assert.strictEqual(n.uri, `/2010-04-01/Accounts/${ACCOUNT}/IncomingPhoneNumbers/${n.sid}.json`);
  const left = await available('US', 'Local', { Contains: '+14155550123$' });
  assert.deepStrictEqual(left, []);
  assertTwilioError(assert, await buy({ PhoneNumber: '+14155550123' }), 400, 21422);
});

// One SID of each kind a scenario creates (number, trunk, hosted order,
// subaccount), and the first page of a search: what a replayed scenario sees.
async function scenario(e) {
  const created = async (res) => { assert.strictEqual(res.status, 201, res.text); return res.json.sid; };
  return {
    sids: [
      await created(await e.api('POST', '/IncomingPhoneNumbers.json', { form: { PhoneNumber: '+14155550123' } })),
      await created(await e.req('POST', '/v1/Trunks', { form: { FriendlyName: 'T' } })),
      await created(await e.req('POST', '/v2/HostedNumber/Orders', { form: { PhoneNumber: '+15017122661',
        ContactPhoneNumber: '+15017122662', AddressSid: 'AD0123456789abcdef0123456789abcdef', Email: 'me@example.com' } })),
      await created(await e.req('POST', '/2010-04-01/Accounts.json', { form: { FriendlyName: 'Sub' } })),
    ],
    search: (await e.api('GET', '/AvailablePhoneNumbers/US/Local.json', { query: { AreaCode: '415', PageSize: '50' } }))
      .json.available_phone_numbers.map((n) => [n.phone_number, n.locality, n.capabilities, n.beta]),
  };
}

test('SIDs are never handed out twice: not after a reset, not after a restart with the same seed', async () => {
  const first = await scenario(emu);
  await emu.control('POST', 'reset');
  const afterReset = await scenario(emu);
  const restarted = await startEmulator(); // the same (default) seed
  let again;
  try {
    again = await scenario(restarted);
  } finally {
    await restarted.stop();
  }
  const all = [...first.sids, ...afterReset.sids, ...again.sids];
  assert.strictEqual(new Set(all).size, all.length, all.join(' '));
  // the inventory stays what the seed makes it
  assert.deepStrictEqual(afterReset.search, first.search);
  assert.deepStrictEqual(again.search, first.search);
});

test('--deterministic-sids: the same SIDs again after a reset and after a restart with the same seed', async () => {
  const a = await startEmulator(['--deterministic-sids']);
  const b = await startEmulator(['--deterministic-sids']);
  const c = await startEmulator(['--deterministic-sids', '--seed', '2']);
  try {
    const first = await scenario(a);
    await a.control('POST', 'reset');
    assert.deepStrictEqual((await scenario(a)).sids, first.sids);
    assert.deepStrictEqual((await scenario(b)).sids, first.sids);
    const other = (await scenario(c)).sids;
    assert.ok(other.every((sid) => !first.sids.includes(sid)), 'another seed gives other SIDs');
  } finally {
    await Promise.all([a.stop(), b.stop(), c.stop()]);
  }
});

test('buy refusals: invalid number 21421, unknown number 21422, nothing given 21421', async () => {
  assertTwilioError(assert, await buy({ PhoneNumber: '4155550123' }), 400, 21421);
  assertTwilioError(assert, await buy({ PhoneNumber: '+1415' }), 400, 21421);
  assertTwilioError(assert, await buy({ PhoneNumber: '+15005550000' }), 400, 21422);
  assertTwilioError(assert, await buy({ FriendlyName: 'x' }), 400, 21421);
});

test('AreaCode purchase picks the first available number; 21451 / 21452 / 21457', async () => {
  const first = (await available('US', 'Local', { AreaCode: '503', PageSize: '1' }))[0];
  const res = await buy({ AreaCode: '503' });
  assert.strictEqual(res.status, 201);
  assert.strictEqual(res.json.phone_number, first.phone_number);
  const next = await buy({ AreaCode: '503' });
  assert.notStrictEqual(next.json.phone_number, first.phone_number);
  assertTwilioError(assert, await buy({ AreaCode: '50' }), 400, 21451);
  assertTwilioError(assert, await buy({ AreaCode: '533' }), 400, 21452);
  assertTwilioError(assert, await buy({ AreaCode: '503' }, undefined, '/IncomingPhoneNumbers/Local.json'), 400, 21457);
});

test('type-specific create only sells numbers of that type', async () => {
  const tf = (await available('US', 'TollFree', { PageSize: '1' }))[0].phone_number;
  assertTwilioError(assert, await buy({ PhoneNumber: tf }, undefined, '/IncomingPhoneNumbers/Local.json'), 400, 21422);
  const res = await buy({ PhoneNumber: tf }, undefined, '/IncomingPhoneNumbers/TollFree.json');
  assert.strictEqual(res.status, 201);
  assert.strictEqual(res.json.type, 'tollfree');
  const list = await emu.api('GET', '/IncomingPhoneNumbers/TollFree.json');
  assert.deepStrictEqual(list.json.incoming_phone_numbers.map((n) => n.phone_number), [tf]);
  assert.deepStrictEqual((await emu.api('GET', '/IncomingPhoneNumbers/Local.json')).json.incoming_phone_numbers, []);
});

test('regulatory refusals: address 21631, bundle 21649, accepted with AddressSid/BundleSid', async () => {
  const addr = async (form) => (await emu.api('POST', '/Addresses.json', { form: { CustomerName: 'Acme', Street: '1 Main Street',
    City: 'City', Region: 'R', ...form } })).json.sid;
  const gbAddress = await addr({ PostalCode: 'SW1A 2AA', IsoCountry: 'GB' });
  const deAddress = await addr({ PostalCode: '10117', IsoCountry: 'DE' });
  const deBundle = (await emu.control('POST', 'bundles', { iso_country: 'DE', number_type: 'local' })).sid;
  const auBundle = (await emu.control('POST', 'bundles', { iso_country: 'AU', number_type: 'mobile' })).sid;
  const gb = (await available('GB', 'Local', { PageSize: '1' }))[0].phone_number;
  assertTwilioError(assert, await buy({ PhoneNumber: gb }), 400, 21631);
  const ok = await buy({ PhoneNumber: gb, AddressSid: gbAddress });
  assert.strictEqual(ok.status, 201);
  assert.strictEqual(ok.json.address_sid, gbAddress);
  assert.ok(['any', 'local'].includes(ok.json.address_requirements));

  const de = (await available('DE', 'Local', { PageSize: '1' }))[0].phone_number;
  assertTwilioError(assert, await buy({ PhoneNumber: de }), 400, 21631);
  assertTwilioError(assert, await buy({ PhoneNumber: de, AddressSid: deAddress }), 400, 21649);
  const deOk = await buy({ PhoneNumber: de, AddressSid: deAddress, BundleSid: deBundle });
  assert.strictEqual(deOk.status, 201);
  assert.strictEqual(deOk.json.bundle_sid, deBundle);

  const au = (await available('AU', 'Mobile', { PageSize: '1' }))[0].phone_number;
  assertTwilioError(assert, await buy({ PhoneNumber: au }), 400, 21649);
  assert.strictEqual((await buy({ PhoneNumber: au, BundleSid: auBundle })).status, 201);
  const gbMobile = (await available('GB', 'Mobile', { PageSize: '1' }))[0].phone_number;
  assert.strictEqual((await buy({ PhoneNumber: gbMobile })).status, 201);
  // a bought number leaves the inventory, a refused purchase leaves it there
  assert.strictEqual((await available('DE', 'Local', { Contains: `+${de.slice(1)}$` })).length, 0);
  const de2 = (await available('DE', 'Local', { PageSize: '1' }))[0].phone_number;
  await buy({ PhoneNumber: de2 });
  assert.strictEqual((await available('DE', 'Local', { Contains: `+${de2.slice(1)}$` })).length, 1);
});

test('bad parameter values are 400 and change nothing', async () => {
  for (const form of [{ SmsMethod: 'PUT' }, { VoiceUrl: 'not a url' }, { AddressSid: 'AD12' }, { EmergencyStatus: 'On' },
    { FriendlyName: 'x'.repeat(65) }, { VoiceCallerIdLookup: 'maybe' }, { VoiceReceiveMode: 'sms' }]) {
    assertTwilioError(assert, await buy({ PhoneNumber: '+14155550124', ...form }), 400, 400);
  }
  assert.strictEqual((await available('US', 'Local', { Contains: '+14155550124$' })).length, 1);
});

test('fetch, update and delete; deleting returns the number to the inventory', async () => {
  const n = (await buy({ PhoneNumber: '+12125550150' })).json;
  const path = `/IncomingPhoneNumbers/${n.sid}.json`;
  assert.deepStrictEqual((await emu.api('GET', path)).json, n);
  await emu.control('POST', 'clock', { advance_s: 3600 });
  const up = await emu.api('POST', path, { form: {
    FriendlyName: 'Sales', SmsUrl: 'https://example.com/sms', SmsMethod: 'post', VoiceCallerIdLookup: 'true',
    EmergencyAddressSid: 'AD0123456789abcdef0123456789abcdef', EmergencyStatus: 'Active',
    StatusCallback: 'https://example.com/status' } });
  assert.strictEqual(up.status, 200, up.text);
  assert.strictEqual(up.json.friendly_name, 'Sales');
  assert.strictEqual(up.json.sms_url, 'https://example.com/sms');
  assert.strictEqual(up.json.sms_method, 'POST');
  assert.strictEqual(up.json.voice_caller_id_lookup, true);
  assert.strictEqual(up.json.emergency_status, 'Active');
  assert.strictEqual(up.json.emergency_address_status, 'registered');
  assert.strictEqual(up.json.status_callback, 'https://example.com/status');
  assert.strictEqual(up.json.date_created, n.date_created);
  assert.notStrictEqual(up.json.date_updated, n.date_updated);
  const cleared = await emu.api('POST', path, { form: { SmsUrl: '' } });
  assert.strictEqual(cleared.json.sms_url, null);
  // a registered emergency address holds the release up until it is removed
  assertTwilioError(assert, await emu.api('DELETE', path), 400, 400);
  const unregistered = await emu.api('POST', path, { form: { EmergencyAddressSid: '' } });
  assert.strictEqual(unregistered.json.emergency_address_sid, null);
  assert.strictEqual(unregistered.json.emergency_address_status, 'unregistered');
  const del = await emu.api('DELETE', path);
  assert.strictEqual(del.status, 204);
  assert.strictEqual(del.text, '');
  assertTwilioError(assert, await emu.api('GET', path), 404, 20404);
  assertTwilioError(assert, await emu.api('DELETE', path), 404, 20404);
  assertTwilioError(assert, await emu.api('POST', path, { form: { FriendlyName: 'x' } }), 404, 20404);
  assert.strictEqual((await available('US', 'Local', { Contains: '+12125550150$' })).length, 1);
  assert.strictEqual((await buy({ PhoneNumber: '+12125550150' })).status, 201);
});

test('owned list pages past one page with PageToken and keeps every 2010 paging field', async () => {
  const bought = [];
  for (const n of await available('US', 'Local', { AreaCode: '617', PageSize: '7' })) {
    bought.push((await buy({ PhoneNumber: n.phone_number })).json.phone_number);
  }
  const seen = [];
  let res = await emu.api('GET', '/IncomingPhoneNumbers.json', { query: { PageSize: '3' } });
  assert.strictEqual(res.json.page, 0);
  assert.strictEqual(res.json.start, 0);
  assert.strictEqual(res.json.end, 2);
  assert.strictEqual(res.json.previous_page_uri, null);
  assert.strictEqual(res.json.first_page_uri, `/2010-04-01/Accounts/${ACCOUNT}/IncomingPhoneNumbers.json?PageSize=3&Page=0`);
  let pages = 0;
  for (;;) {
    pages++;
    seen.push(...res.json.incoming_phone_numbers.map((n) => n.phone_number));
    if (!res.json.next_page_uri) break;
    assert.match(res.json.next_page_uri, /PageToken=PAPN[0-9a-f]{32}/);
    res = await emu.req('GET', res.json.next_page_uri);
    assert.strictEqual(res.json.page, pages);
    assert.ok(res.json.previous_page_uri);
  }
  assert.strictEqual(pages, 3);
  assert.deepStrictEqual(seen, [...bought].sort());
  const prev = await emu.req('GET', res.json.previous_page_uri);
  assert.deepStrictEqual(prev.json.incoming_phone_numbers.map((n) => n.phone_number), seen.slice(3, 6));
  const p2 = await emu.api('GET', '/IncomingPhoneNumbers.json', { query: { PageSize: '3', Page: '2' } });
  assert.deepStrictEqual(p2.json.incoming_phone_numbers.map((n) => n.phone_number), seen.slice(6));
  assertTwilioError(assert, await emu.api('GET', '/IncomingPhoneNumbers.json', { query: { PageSize: '0' } }), 400, 400);
});

test('owned list filters: PhoneNumber with *, FriendlyName, Beta, Origin', async () => {
  await buy({ PhoneNumber: '+13055550101', FriendlyName: 'one' });
  await buy({ PhoneNumber: '+13055550102', FriendlyName: 'two' });
  await buy({ PhoneNumber: '+17025550101' });
  const q = async (query) => (await emu.api('GET', '/IncomingPhoneNumbers.json', { query })).json.incoming_phone_numbers.map((n) => n.phone_number);
  assert.deepStrictEqual(await q({ PhoneNumber: '+1305*' }), ['+13055550101', '+13055550102']);
  assert.deepStrictEqual(await q({ PhoneNumber: '5550101' }), ['+13055550101', '+17025550101']);
  assert.deepStrictEqual(await q({ FriendlyName: 'two' }), ['+13055550102']);
  assert.deepStrictEqual(await q({ Origin: 'hosted' }), []);
  assert.strictEqual((await q({ Origin: 'twilio' })).length, 3);
});

test('subaccounts: create, list, use with the parent credentials and with their own', async () => {
  const sub = await emu.req('POST', '/2010-04-01/Accounts.json', { form: { FriendlyName: 'Customer 7' } });
  assert.strictEqual(sub.status, 201);
  assert.match(sub.json.sid, /^AC[0-9a-f]{32}$/);
  assert.strictEqual(sub.json.owner_account_sid, ACCOUNT);
  assert.strictEqual(sub.json.friendly_name, 'Customer 7');
  assert.strictEqual(sub.json.status, 'active');
  const list = await emu.req('GET', '/2010-04-01/Accounts.json');
  assert.deepStrictEqual(list.json.accounts.map((a) => a.sid).sort(), [ACCOUNT, sub.json.sid].sort());
  assert.deepStrictEqual((await emu.req('GET', '/2010-04-01/Accounts.json', { query: { FriendlyName: 'Customer 7' } }))
    .json.accounts.map((a) => a.sid), [sub.json.sid]);
  // parent credentials on the subaccount's path
  const bought = await buy({ PhoneNumber: '+13125550111' }, sub.json.sid);
  assert.strictEqual(bought.status, 201);
  assert.strictEqual(bought.json.account_sid, sub.json.sid);
  // the subaccount's own credentials work on its path but not on the parent's
  const own = [sub.json.sid, sub.json.auth_token];
  assert.strictEqual((await emu.api('GET', '/IncomingPhoneNumbers.json', { account: sub.json.sid, auth: own })).json.incoming_phone_numbers.length, 1);
  assertTwilioError(assert, await emu.api('GET', '/IncomingPhoneNumbers.json', { auth: own }), 401, 20003);
  assertTwilioError(assert, await emu.req('POST', '/2010-04-01/Accounts.json', { auth: own }), 401, 20003);
  const upd = await emu.req('POST', `/2010-04-01/Accounts/${sub.json.sid}.json`, { form: { Status: 'suspended' } });
  assert.strictEqual(upd.json.status, 'suspended');
  assert.strictEqual((await emu.req('GET', `/2010-04-01/Accounts/${sub.json.sid}.json`)).json.status, 'suspended');
});

test('transfer to a subaccount moves the number between account paths', async () => {
  const sub = (await emu.req('POST', '/2010-04-01/Accounts.json', { form: {} })).json;
  const n = (await buy({ PhoneNumber: '+12065550120' })).json;
  const moved = await emu.api('POST', `/IncomingPhoneNumbers/${n.sid}.json`, { form: { AccountSid: sub.sid } });
  assert.strictEqual(moved.status, 200, moved.text);
  assert.strictEqual(moved.json.account_sid, sub.sid);
  assert.strictEqual(moved.json.sid, n.sid);
  assert.strictEqual(moved.json.uri, `/2010-04-01/Accounts/${sub.sid}/IncomingPhoneNumbers/${n.sid}.json`);
  assertTwilioError(assert, await emu.api('GET', `/IncomingPhoneNumbers/${n.sid}.json`), 404, 20404);
  assert.strictEqual((await emu.api('GET', `/IncomingPhoneNumbers/${n.sid}.json`, { account: sub.sid })).status, 200);
  assert.deepStrictEqual((await emu.api('GET', '/IncomingPhoneNumbers.json')).json.incoming_phone_numbers, []);
  const back = await emu.api('POST', `/IncomingPhoneNumbers/${n.sid}.json`, { account: sub.sid, form: { AccountSid: ACCOUNT } });
  assert.strictEqual(back.json.account_sid, ACCOUNT);
  assertTwilioError(assert, await emu.api('POST', `/IncomingPhoneNumbers/${n.sid}.json`,
    { form: { AccountSid: 'AC99999999999999999999999999999999' } }), 404, 20404);
  const state = await emu.control('GET', 'state');
  assert.deepStrictEqual(state.numbers.map((x) => [x.phone_number, x.account_sid]), [['+12065550120', ACCOUNT]]);
});

test('authentication: account token, API key, and 401/20003 otherwise', async () => {
  assert.strictEqual((await emu.api('GET', '/IncomingPhoneNumbers.json', { auth: [API_KEY, API_SECRET] })).status, 200);
  const none = await emu.api('GET', '/IncomingPhoneNumbers.json', { auth: false });
  assertTwilioError(assert, none, 401, 20003);
  assert.match(none.headers['www-authenticate'], /^Basic/);
  assertTwilioError(assert, await emu.api('GET', '/IncomingPhoneNumbers.json', { auth: [ACCOUNT, 'wrong'] }), 401, 20003);
  assertTwilioError(assert, await emu.api('GET', '/IncomingPhoneNumbers.json', { auth: [API_KEY, TOKEN] }), 401, 20003);
  assertTwilioError(assert, await emu.api('GET', '/IncomingPhoneNumbers.json', { account: 'AC99999999999999999999999999999999' }), 401, 20003);
  assertTwilioError(assert, await emu.req('GET', '/v1/Trunks', { auth: false }), 401, 20003);
  assertTwilioError(assert, await emu.req('GET', '/2010-04-01/Nothing.json'), 404, 20404);
  assertTwilioError(assert, await emu.api('DELETE', '/IncomingPhoneNumbers.json'), 405, 20004);
});
