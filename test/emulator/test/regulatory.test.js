'use strict';
// Addresses (with DependentPhoneNumbers), Regulations, Bundles and Clones,
// and the purchase and transfer checks that use them (21631, 21649, 21613).
const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert');
const { startEmulator, assertTwilioError, ACCOUNT } = require('./helpers');

let emu;
before(async () => { emu = await startEmulator(); });
after(() => emu.stop());
beforeEach(() => emu.control('POST', 'reset'));

const ADDRESS_FIELDS = ['account_sid', 'city', 'customer_name', 'date_created', 'date_updated', 'emergency_enabled',
  'friendly_name', 'iso_country', 'postal_code', 'region', 'sid', 'street', 'street_secondary', 'uri', 'validated', 'verified'];
const BUNDLE_FIELDS = ['account_sid', 'date_created', 'date_updated', 'email', 'friendly_name', 'links', 'regulation_sid',
  'sid', 'status', 'status_callback', 'url', 'valid_until'];
const BERLIN = { CustomerName: 'Muster GmbH', Street: 'Unter den Linden 1', City: 'Berlin', Region: 'BE', PostalCode: '10117', IsoCountry: 'DE' };
const LONDON = { CustomerName: 'Acme Ltd', Street: '10 Downing Street', City: 'London', Region: 'London', PostalCode: 'SW1A 2AA', IsoCountry: 'GB' };

const address = async (form, account) => emu.api('POST', '/Addresses.json', { form, account });
const buy = (form, account) => emu.api('POST', '/IncomingPhoneNumbers.json', { form, account });
const first = async (iso, type) => (await emu.api('GET', `/AvailablePhoneNumbers/${iso}/${type}.json`, { query: { PageSize: '1' } }))
  .json.available_phone_numbers[0].phone_number;
const bundle = (json) => emu.control('POST', 'bundles', json);

test('addresses: create with every field, fetch, update, list with filters, paging', async () => {
  const res = await address({ ...BERLIN, FriendlyName: 'HQ', EmergencyEnabled: 'false', StreetSecondary: '3. OG' });
  assert.strictEqual(res.status, 201, res.text);
  const a = res.json;
  assert.deepStrictEqual(Object.keys(a).sort(), ADDRESS_FIELDS);
  assert.match(a.sid, /^AD[0-9a-f]{32}$/);
  assert.strictEqual(a.account_sid, ACCOUNT);
  assert.strictEqual(a.validated, true);
  assert.strictEqual(a.verified, false);
  assert.strictEqual(a.street_secondary, '3. OG');
  assert.strictEqual(a.uri, `/2010-04-01/Accounts/${ACCOUNT}/Addresses/${a.sid}.json`);
  assert.deepStrictEqual((await emu.api('GET', `/Addresses/${a.sid}.json`)).json, a);
  const upd = await emu.api('POST', `/Addresses/${a.sid}.json`, { form: { FriendlyName: 'Head office', Street: 'Unter den Linden 2' } });
  assert.strictEqual(upd.status, 200, upd.text);
  assert.strictEqual(upd.json.friendly_name, 'Head office');
  assert.strictEqual(upd.json.street, 'Unter den Linden 2');
  assert.strictEqual(upd.json.city, 'Berlin');
  const b = (await address(LONDON)).json;
  const c = (await address({ ...LONDON, CustomerName: 'Other Ltd', EmergencyEnabled: 'true' })).json;
  const q = async (query) => (await emu.api('GET', '/Addresses.json', { query })).json.addresses.map((x) => x.sid);
  assert.deepStrictEqual(await q({}), [a.sid, b.sid, c.sid]);
  assert.deepStrictEqual(await q({ IsoCountry: 'GB' }), [b.sid, c.sid]);
  assert.deepStrictEqual(await q({ CustomerName: 'Other Ltd' }), [c.sid]);
  assert.deepStrictEqual(await q({ FriendlyName: 'Head office' }), [a.sid]);
  assert.deepStrictEqual(await q({ EmergencyEnabled: 'true' }), [c.sid]);
  const page = (await emu.api('GET', '/Addresses.json', { query: { PageSize: '2' } })).json;
  assert.strictEqual(page.addresses.length, 2);
  const next = await emu.req('GET', page.next_page_uri);
  assert.deepStrictEqual(next.json.addresses.map((x) => x.sid), [c.sid]);
  // another account's path does not show it
  const sub = (await emu.req('POST', '/2010-04-01/Accounts.json', { form: { FriendlyName: 'Customer' } })).json;
  assert.deepStrictEqual((await emu.api('GET', '/Addresses.json', { account: sub.sid })).json.addresses, []);
  assertTwilioError(assert, await emu.api('GET', `/Addresses/${a.sid}.json`, { account: sub.sid }), 404, 20404);
});

test('addresses: 21628 for an invalid address, 400 for missing fields, 404 for unknown', async () => {
  assertTwilioError(assert, await address({ ...BERLIN, PostalCode: '1011' }), 400, 21628);
  assertTwilioError(assert, await address({ ...LONDON, PostalCode: '12345' }), 400, 21628);
  assertTwilioError(assert, await address({ ...BERLIN, Street: 'Unter den Linden' }), 400, 21628);
  for (const missing of ['CustomerName', 'Street', 'City', 'Region', 'PostalCode', 'IsoCountry']) {
    const form = { ...BERLIN };
    delete form[missing];
    assertTwilioError(assert, await address(form), 400, 400);
  }
  assertTwilioError(assert, await address({ ...BERLIN, IsoCountry: 'Germany' }), 400, 400);
  assert.deepStrictEqual((await emu.api('GET', '/Addresses.json')).json.addresses, []);
  const a = (await address(BERLIN)).json;
  assertTwilioError(assert, await emu.api('POST', `/Addresses/${a.sid}.json`, { form: { PostalCode: 'ABC' } }), 400, 21628);
  assert.strictEqual((await emu.api('GET', `/Addresses/${a.sid}.json`)).json.postal_code, '10117'); // unchanged
  assertTwilioError(assert, await emu.api('GET', '/Addresses/AD00000000000000000000000000000000.json'), 404, 20404);
  const ctl = await emu.control('POST', `addresses/${a.sid}`, { verified: true });
  assert.strictEqual(ctl.verified, true);
  assert.strictEqual((await emu.api('GET', `/Addresses/${a.sid}.json`)).json.verified, true);
});

test('a number bought with an address depends on it: listed, and the address cannot be deleted', async () => {
  const a = (await address(BERLIN)).json;
  const unused = (await address({ ...BERLIN, CustomerName: 'Unused' })).json;
  const de = await first('DE', 'Local');
  const bu = await bundle({ iso_country: 'DE', number_type: 'local', end_user_type: 'business' });
  const n = await buy({ PhoneNumber: de, AddressSid: a.sid, BundleSid: bu.sid });
  assert.strictEqual(n.status, 201, n.text);
  const deps = await emu.api('GET', `/Addresses/${a.sid}/DependentPhoneNumbers.json`);
  assert.strictEqual(deps.status, 200);
  assert.deepStrictEqual(deps.json.dependent_phone_numbers.map((x) => x.phone_number), [de]);
  assert.strictEqual(deps.json.dependent_phone_numbers[0].sid, n.json.sid);
  assert.deepStrictEqual((await emu.api('GET', `/Addresses/${unused.sid}/DependentPhoneNumbers.json`)).json.dependent_phone_numbers, []);
  assertTwilioError(assert, await emu.api('DELETE', `/Addresses/${a.sid}.json`), 400, 400);
  assert.strictEqual((await emu.api('GET', `/Addresses/${a.sid}.json`)).status, 200);
  assert.strictEqual((await emu.api('DELETE', `/Addresses/${unused.sid}.json`)).status, 204);
  // released, the number no longer depends on it
  assert.strictEqual((await emu.api('DELETE', `/IncomingPhoneNumbers/${n.json.sid}.json`)).status, 204);
  assert.strictEqual((await emu.api('DELETE', `/Addresses/${a.sid}.json`)).status, 204);
  assertTwilioError(assert, await emu.api('GET', `/Addresses/${a.sid}.json`), 404, 20404);
});

test('purchase: 21631 without a fitting address of the account, 21649 without an approved bundle for the number', async () => {
  const berlin = (await address(BERLIN)).json;
  const london = (await address(LONDON)).json;
  const de = await first('DE', 'Local');
  assertTwilioError(assert, await buy({ PhoneNumber: de }), 400, 21631);
  assertTwilioError(assert, await buy({ PhoneNumber: de, AddressSid: london.sid }), 400, 21631); // local: must be in DE
  assertTwilioError(assert, await buy({ PhoneNumber: de, AddressSid: 'AD0123456789abcdef0123456789abcdef' }), 400, 21631);
  assertTwilioError(assert, await buy({ PhoneNumber: de, AddressSid: berlin.sid }), 400, 21649);
  const review = await bundle({ iso_country: 'DE', number_type: 'local', status: 'in-review' });
  const mobile = await bundle({ iso_country: 'AU', number_type: 'mobile' });
  assertTwilioError(assert, await buy({ PhoneNumber: de, AddressSid: berlin.sid, BundleSid: review.sid }), 400, 21649);
  assertTwilioError(assert, await buy({ PhoneNumber: de, AddressSid: berlin.sid, BundleSid: mobile.sid }), 400, 21649);
  assertTwilioError(assert, await buy({ PhoneNumber: de, AddressSid: berlin.sid, BundleSid: 'BU0123456789abcdef0123456789abcdef' }), 400, 21649);
  await emu.control('POST', `bundles/${review.sid}`, { status: 'twilio-approved' });
  const ok = await buy({ PhoneNumber: de, AddressSid: berlin.sid, BundleSid: review.sid });
  assert.strictEqual(ok.status, 201, ok.text);
  assert.strictEqual(ok.json.address_sid, berlin.sid);
  assert.strictEqual(ok.json.bundle_sid, review.sid);
  // GB local: any (or local) address, no bundle
  const gb = await first('GB', 'Local');
  assert.strictEqual((await buy({ PhoneNumber: gb, AddressSid: london.sid })).status, 201);
  // an address or a bundle of another account does not count
  const sub = (await emu.req('POST', '/2010-04-01/Accounts.json', { form: { FriendlyName: 'Customer' } })).json;
  const subBundle = await bundle({ account_sid: sub.sid, iso_country: 'DE', number_type: 'local' });
  const de2 = await first('DE', 'Local');
  assertTwilioError(assert, await buy({ PhoneNumber: de2, AddressSid: berlin.sid, BundleSid: subBundle.sid }), 400, 21649);
  assertTwilioError(assert, await buy({ PhoneNumber: de2, AddressSid: berlin.sid, BundleSid: subBundle.sid }, sub.sid), 400, 21631);
});

test('regulations: list with filters, fetch, requirements with end user fields and document types', async () => {
  const all = await emu.req('GET', '/v2/RegulatoryCompliance/Regulations', { query: { PageSize: '100' } });
  assert.strictEqual(all.status, 200);
  assert.strictEqual(all.json.meta.key, 'results');
  assert.strictEqual(all.json.results.length, 10);
  const de = await emu.req('GET', '/v2/RegulatoryCompliance/Regulations',
    { query: { IsoCountry: 'DE', NumberType: 'local', EndUserType: 'business' } });
  assert.strictEqual(de.json.results.length, 1);
  const r = de.json.results[0];
  assert.deepStrictEqual(Object.keys(r).sort(), ['end_user_type', 'friendly_name', 'iso_country', 'number_type', 'requirements', 'sid', 'url']);
  assert.match(r.sid, /^RN[0-9a-f]{32}$/);
  assert.strictEqual(r.friendly_name, 'Germany: Local - Business');
  assert.deepStrictEqual(r.requirements.end_user[0].fields, ['business_name', 'business_registration_number']);
  const docs = r.requirements.supporting_document.flat().flatMap((d) => d.accepted_documents.map((x) => x.type));
  assert.deepStrictEqual(docs, ['address', 'commercial_registrar_excerpt']);
  assert.deepStrictEqual((await emu.req('GET', `/v2/RegulatoryCompliance/Regulations/${r.sid}`)).json, r);
  const gb = (await emu.req('GET', '/v2/RegulatoryCompliance/Regulations', { query: { IsoCountry: 'GB', EndUserType: 'individual' } })).json.results;
  assert.deepStrictEqual(gb.map((x) => [x.number_type, x.requirements.end_user.length]), [['local', 0]]);
  const tf = (await emu.req('GET', '/v2/RegulatoryCompliance/Regulations', { query: { IsoCountry: 'DE', NumberType: 'toll free' } })).json.results;
  assert.strictEqual(tf.length, 2);
  assert.deepStrictEqual((await emu.req('GET', '/v2/RegulatoryCompliance/Regulations', { query: { IsoCountry: 'US' } })).json.results, []);
  assertTwilioError(assert, await emu.req('GET', '/v2/RegulatoryCompliance/Regulations', { query: { EndUserType: 'robot' } }), 400, 400);
  assertTwilioError(assert, await emu.req('GET', '/v2/RegulatoryCompliance/Regulations/RN00000000000000000000000000000000'), 404, 20404);
});

test('bundles: create (draft), submit, the reviewers move it, list filters, delete', async () => {
  const res = await emu.req('POST', '/v2/RegulatoryCompliance/Bundles', { form: { FriendlyName: 'Muster GmbH DE local',
    Email: 'compliance@example.com', IsoCountry: 'DE', NumberType: 'local', EndUserType: 'business' } });
  assert.strictEqual(res.status, 201, res.text);
  const b = res.json;
  assert.deepStrictEqual(Object.keys(b).sort(), BUNDLE_FIELDS);
  assert.match(b.sid, /^BU[0-9a-f]{32}$/);
  assert.strictEqual(b.status, 'draft');
  assert.strictEqual(b.valid_until, null);
  assert.strictEqual(b.url, `${emu.base}/v2/RegulatoryCompliance/Bundles/${b.sid}`);
  assertTwilioError(assert, await emu.req('POST', '/v2/RegulatoryCompliance/Bundles', { form: { FriendlyName: 'x' } }), 400, 400);
  assertTwilioError(assert, await emu.req('POST', '/v2/RegulatoryCompliance/Bundles', { form: { FriendlyName: 'x', Email: 'e@x.com',
    IsoCountry: 'US', NumberType: 'local', EndUserType: 'business' } }), 400, 400);
  assertTwilioError(assert, await emu.req('POST', `/v2/RegulatoryCompliance/Bundles/${b.sid}`, { form: { Status: 'twilio-approved' } }), 400, 400);
  const sub = await emu.req('POST', `/v2/RegulatoryCompliance/Bundles/${b.sid}`, { form: { Status: 'pending-review' } });
  assert.strictEqual(sub.json.status, 'pending-review');
  for (const s of ['in-review', 'twilio-rejected']) assert.strictEqual((await emu.control('POST', `bundles/${b.sid}`, { status: s })).status, s);
  const rejected = await emu.control('POST', `bundles/${b.sid}`, { status: 'twilio-rejected', failure_reason: 'Blurry' });
  assert.strictEqual(rejected.failure_reason, 'Blurry');
  await emu.control('POST', `bundles/${b.sid}`, { status: 'twilio-approved' });
  const approved = (await emu.req('GET', `/v2/RegulatoryCompliance/Bundles/${b.sid}`)).json;
  assert.strictEqual(approved.status, 'twilio-approved');
  assert.ok(approved.valid_until);
  const bad = await emu.req('POST', `/_emulator/bundles/${b.sid}`, { json: { status: 'done' }, auth: false });
  assert.strictEqual(bad.status, 400);
  const missing = await emu.req('POST', '/_emulator/bundles/BU00000000000000000000000000000000', { json: { status: 'draft' }, auth: false });
  assert.strictEqual(missing.status, 404);
  const au = await bundle({ iso_country: 'AU', number_type: 'mobile', end_user_type: 'individual', status: 'in-review' });
  const q = async (query) => (await emu.req('GET', '/v2/RegulatoryCompliance/Bundles', { query })).json.results.map((x) => x.sid);
  assert.deepStrictEqual(await q({}), [b.sid, au.sid]);
  assert.deepStrictEqual(await q({ Status: 'in-review' }), [au.sid]);
  assert.deepStrictEqual(await q({ IsoCountry: 'DE' }), [b.sid]);
  assert.deepStrictEqual(await q({ NumberType: 'mobile', EndUserType: 'individual' }), [au.sid]);
  assert.deepStrictEqual(await q({ BundleSids: `${au.sid}` }), [au.sid]);
  assertTwilioError(assert, await emu.req('GET', '/v2/RegulatoryCompliance/Bundles', { query: { Status: 'done' } }), 400, 400);
  // in use by a number: not deleted
  const a = (await address(BERLIN)).json;
  await buy({ PhoneNumber: await first('DE', 'Local'), AddressSid: a.sid, BundleSid: b.sid });
  assertTwilioError(assert, await emu.req('DELETE', `/v2/RegulatoryCompliance/Bundles/${b.sid}`), 400, 400);
  assert.strictEqual((await emu.req('DELETE', `/v2/RegulatoryCompliance/Bundles/${au.sid}`)).status, 204);
  assertTwilioError(assert, await emu.req('GET', `/v2/RegulatoryCompliance/Bundles/${au.sid}`), 404, 20404);
});

test('transfer to a subaccount: 21613 unless the address and bundle of the subaccount come with it; clones', async () => {
  const berlin = (await address(BERLIN)).json;
  const bu = await bundle({ iso_country: 'DE', number_type: 'local' });
  const de = await first('DE', 'Local');
  const n = (await buy({ PhoneNumber: de, AddressSid: berlin.sid, BundleSid: bu.sid })).json;
  const sub = (await emu.req('POST', '/2010-04-01/Accounts.json', { form: { FriendlyName: 'Customer' } })).json;
  const move = (form) => emu.api('POST', `/IncomingPhoneNumbers/${n.sid}.json`, { form: { AccountSid: sub.sid, ...form } });
  assertTwilioError(assert, await move({}), 400, 21613); // the main account's address and bundle do not count there
  // clone the bundle into the subaccount; a draft or unapproved source refuses
  const draft = (await emu.req('POST', `/v2/RegulatoryCompliance/Bundles/${bu.sid}/Clones`,
    { form: { TargetAccountSid: sub.sid, MoveToDraft: 'true' } })).json;
  assert.strictEqual(draft.status, 'draft');
  const res = await emu.req('POST', `/v2/RegulatoryCompliance/Bundles/${bu.sid}/Clones`, { form: { TargetAccountSid: sub.sid, FriendlyName: 'Clone' } });
  assert.strictEqual(res.status, 201, res.text);
  const clone = res.json;
  assert.deepStrictEqual(Object.keys(clone).sort(), ['account_sid', 'bundle_sid', 'date_created', 'date_updated', 'email', 'friendly_name',
    'regulation_sid', 'status', 'status_callback', 'url', 'valid_until']);
  assert.strictEqual(clone.account_sid, sub.sid);
  assert.strictEqual(clone.status, 'twilio-approved');
  assert.strictEqual(clone.regulation_sid, bu.regulation_sid);
  assert.notStrictEqual(clone.bundle_sid, bu.sid);
  assertTwilioError(assert, await emu.req('POST', `/v2/RegulatoryCompliance/Bundles/${draft.bundle_sid}/Clones`,
    { form: { TargetAccountSid: ACCOUNT } }), 400, 400);
  assertTwilioError(assert, await emu.req('POST', `/v2/RegulatoryCompliance/Bundles/${bu.sid}/Clones`,
    { form: { TargetAccountSid: 'AC00000000000000000000000000000000' } }), 404, 20404);
  // the address too, in the subaccount
  const subAddr = (await address(BERLIN, sub.sid)).json;
  assert.strictEqual(subAddr.account_sid, sub.sid);
  assertTwilioError(assert, await move({ BundleSid: clone.bundle_sid }), 400, 21613);
  assertTwilioError(assert, await move({ AddressSid: subAddr.sid, BundleSid: draft.bundle_sid }), 400, 21613);
  const moved = await move({ AddressSid: subAddr.sid, BundleSid: clone.bundle_sid });
  assert.strictEqual(moved.status, 200, moved.text);
  assert.strictEqual(moved.json.account_sid, sub.sid);
  assert.strictEqual(moved.json.address_sid, subAddr.sid);
  assert.strictEqual(moved.json.bundle_sid, clone.bundle_sid);
  assert.deepStrictEqual((await emu.api('GET', `/Addresses/${subAddr.sid}/DependentPhoneNumbers.json`, { account: sub.sid }))
    .json.dependent_phone_numbers.map((x) => x.phone_number), [de]);
  assert.deepStrictEqual((await emu.api('GET', `/Addresses/${berlin.sid}/DependentPhoneNumbers.json`)).json.dependent_phone_numbers, []);
  // a US number needs neither
  const us = (await buy({ PhoneNumber: '+14155550150' })).json;
  assert.strictEqual((await emu.api('POST', `/IncomingPhoneNumbers/${us.sid}.json`, { form: { AccountSid: sub.sid } })).status, 200);
  const state = await emu.control('GET', 'state');
  assert.deepStrictEqual(state.bundles.filter((b) => b.cloned_from === bu.sid).map((b) => b.account_sid), [sub.sid, sub.sid]);
  assert.strictEqual(state.addresses.length, 2);
});

test('evaluations: a draft bundle is noncompliant with every requirement missing, a submitted one compliant', async () => {
  const b = (await emu.req('POST', '/v2/RegulatoryCompliance/Bundles', { form: { FriendlyName: 'AU mobile', Email: 'c@example.com',
    IsoCountry: 'AU', NumberType: 'mobile', EndUserType: 'individual' } })).json;
  const res = await emu.req('POST', `/v2/RegulatoryCompliance/Bundles/${b.sid}/Evaluations`);
  assert.strictEqual(res.status, 201, res.text);
  const ev = res.json;
  assert.deepStrictEqual(Object.keys(ev).sort(), ['account_sid', 'bundle_sid', 'date_created', 'regulation_sid', 'results', 'sid', 'status', 'url']);
  assert.match(ev.sid, /^EL[0-9a-f]{32}$/);
  assert.strictEqual(ev.status, 'noncompliant');
  assert.deepStrictEqual(ev.results.map((r) => [r.requirement_name, r.passed]),
    [['individual_info', false], ['proof_of_address', false], ['proof_of_identity', false]]);
  assert.deepStrictEqual(ev.results[0].invalid.map((i) => i.object_field), ['first_name', 'last_name']);
  await emu.req('POST', `/v2/RegulatoryCompliance/Bundles/${b.sid}`, { form: { Status: 'pending-review' } });
  const ok = (await emu.req('POST', `/v2/RegulatoryCompliance/Bundles/${b.sid}/Evaluations`)).json;
  assert.strictEqual(ok.status, 'compliant');
  assert.ok(ok.results.every((r) => r.passed));
  const list = (await emu.req('GET', `/v2/RegulatoryCompliance/Bundles/${b.sid}/Evaluations`)).json;
  assert.strictEqual(list.meta.key, 'results');
  assert.deepStrictEqual(list.results.map((e) => e.sid), [ev.sid, ok.sid]);
  assert.deepStrictEqual((await emu.req('GET', `/v2/RegulatoryCompliance/Bundles/${b.sid}/Evaluations/${ok.sid}`)).json, ok);
  assertTwilioError(assert, await emu.req('GET', `/v2/RegulatoryCompliance/Bundles/${b.sid}/Evaluations/EL00000000000000000000000000000000`), 404, 20404);
  assertTwilioError(assert, await emu.req('POST', '/v2/RegulatoryCompliance/Bundles/BU00000000000000000000000000000000/Evaluations'), 404, 20404);
});
