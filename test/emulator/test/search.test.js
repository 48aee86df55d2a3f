'use strict';
// AvailablePhoneNumbers: country list, country resource, and every search filter.
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const { startEmulator, assertTwilioError, ACCOUNT } = require('./helpers');

let emu;
before(async () => { emu = await startEmulator(); });
after(() => emu.stop());

const search = (country, type, query) => emu.api('GET', `/AvailablePhoneNumbers/${country}/${type}.json`, { query });
const numbers = (res) => res.json.available_phone_numbers;
const AVAILABLE_FIELDS = ['address_requirements', 'beta', 'capabilities', 'friendly_name', 'iso_country', 'lata',
  'latitude', 'locality', 'longitude', 'phone_number', 'postal_code', 'rate_center', 'region'];

test('country list names every country with the types it offers', async () => {
  const res = await emu.api('GET', '/AvailablePhoneNumbers.json');
  assert.strictEqual(res.status, 200);
  const byCode = Object.fromEntries(res.json.countries.map((c) => [c.country_code, c]));
  assert.deepStrictEqual(Object.keys(byCode), ['AU', 'CA', 'DE', 'GB', 'US']);
  assert.deepStrictEqual(Object.keys(byCode.US.subresource_uris), ['local', 'toll_free']);
  assert.deepStrictEqual(Object.keys(byCode.GB.subresource_uris), ['local', 'mobile']);
  assert.strictEqual(byCode.US.subresource_uris.local, `/2010-04-01/Accounts/${ACCOUNT}/AvailablePhoneNumbers/US/Local.json`);
  for (const f of ['first_page_uri', 'next_page_uri', 'previous_page_uri', 'page', 'page_size', 'start', 'end', 'uri']) {
    assert.ok(f in res.json, f);
  }
});

test('country resource; unknown country and type not offered are 404 with 20404', async () => {
  const res = await emu.api('GET', '/AvailablePhoneNumbers/GB.json');
  assert.strictEqual(res.json.country, 'United Kingdom');
  assert.strictEqual(res.json.beta, false);
  assertTwilioError(assert, await emu.api('GET', '/AvailablePhoneNumbers/ZZ.json'), 404, 20404);
  assertTwilioError(assert, await search('GB', 'TollFree'), 404, 20404);
  assertTwilioError(assert, await search('US', 'Mobile'), 404, 20404);
  assertTwilioError(assert, await search('US', 'National'), 404, 20404);
  assertTwilioError(assert, await search('ZZ', 'Local'), 404, 20404);
});

test('search returns one page in phone-number order with the real wire forms', async () => {
  const res = await search('US', 'Local', { AreaCode: '415' });
  assert.strictEqual(res.status, 200);
  const list = numbers(res);
  assert.strictEqual(list.length, 50); // default PageSize
  assert.strictEqual(res.json.next_page_uri, null);
  assert.strictEqual(res.json.previous_page_uri, null);
  assert.strictEqual(res.json.page_size, 50);
  assert.strictEqual(res.json.end, 49);
  const sorted = [...list].sort((a, b) => (a.phone_number < b.phone_number ? -1 : 1));
  assert.deepStrictEqual(list, sorted);
  for (const n of list) {
    assert.deepStrictEqual(Object.keys(n).sort(), [...AVAILABLE_FIELDS].sort());
    assert.match(n.phone_number, /^\+1415\d{7}$/);
    assert.strictEqual(typeof n.latitude, 'string');
    assert.match(n.latitude, /^-?\d+\.\d{6}$/);
    assert.strictEqual(typeof n.lata, 'string');
    assert.deepStrictEqual(Object.keys(n.capabilities), ['voice', 'SMS', 'MMS', 'fax']);
    assert.strictEqual(n.region, 'CA');
  }
  const again = await search('US', 'Local', { AreaCode: '415' });
  assert.deepStrictEqual(numbers(again), list); // asking again returns the same numbers
});

test('geography is consistent: 415 numbers are San Francisco or Sausalito with matching ZIP and LATA 722', async () => {
  const list = numbers(await search('US', 'Local', { AreaCode: '415', PageSize: '1000' }));
  assert.ok(list.length >= 200);
  const zips = { '94103': 'San Francisco', '94107': 'San Francisco', '94965': 'Sausalito' };
  for (const n of list) {
    assert.strictEqual(zips[n.postal_code], n.locality);
    assert.strictEqual(n.lata, '722');
  }
});

test('10+ US area codes each have 200+ numbers', async () => {
  for (const ac of ['212', '213', '310', '312', '415', '503', '512', '617', '646', '702', '206', '305']) {
    const list = numbers(await search('US', 'Local', { AreaCode: ac, PageSize: '1000' }));
    assert.ok(list.length >= 200, `${ac}: ${list.length}`);
    assert.ok(list.every((n) => n.phone_number.startsWith(`+1${ac}`)));
  }
});

test('PageSize 1..1000; outside that range is a 400', async () => {
  assert.strictEqual(numbers(await search('US', 'Local', { PageSize: '1000' })).length, 1000);
  assert.strictEqual(numbers(await search('US', 'Local', { PageSize: '1' })).length, 1);
  for (const bad of ['0', '1001', 'abc', '-5']) assertTwilioError(assert, await search('US', 'Local', { PageSize: bad }), 400, 400);
});

test('Contains: exact anchored number, keypad letters, * and % wildcards', async () => {
  let list = numbers(await search('US', 'Local', { Contains: '+14155550123$' }));
  assert.deepStrictEqual(list.map((n) => n.phone_number), ['+14155550123']);
  list = numbers(await search('US', 'Local', { Contains: '+1415555012*' }));
  assert.strictEqual(list.length, 10);
  assert.ok(list.every((n) => /^\+1415555012\d$/.test(n.phone_number)));
  list = numbers(await search('US', 'Local', { Contains: '%0199$', PageSize: '100' }));
  assert.strictEqual(list.length, 12); // 555-0199 in every US area code
  list = numbers(await search('US', 'Local', { Contains: 'JKL', PageSize: '1000' })); // J K L -> 5 5 5
  assert.ok(list.length > 0 && list.every((n) => n.phone_number.slice(1).includes('555')));
  list = numbers(await search('US', 'Local', { AreaCode: '212', Contains: '555****' }));
  assert.ok(list.length > 0 && list.every((n) => /555\d{4}/.test(n.phone_number)));
  list = numbers(await search('GB', 'Local', { Contains: '+44207946%' }));
  assert.ok(list.length > 0 && list.every((n) => n.phone_number.startsWith('+44207946')));
  assert.deepStrictEqual(numbers(await search('US', 'Local', { Contains: '+19995550123$' })), []);
});

test('invalid Contains patterns are a 400', async () => {
  for (const bad of ['1', '12345678901234567', '1*2', '++1', '1$2', '%$', '+%12', 'ab!c']) {
    assertTwilioError(assert, await search('US', 'Local', { Contains: bad }), 400, 400);
  }
});

test('AreaCode filters NANP; a malformed AreaCode is 21451', async () => {
  const list = numbers(await search('CA', 'Local', { AreaCode: '604' }));
  assert.ok(list.length > 0 && list.every((n) => n.phone_number.startsWith('+1604') && n.region === 'BC'));
  assertTwilioError(assert, await search('US', 'Local', { AreaCode: '41' }), 400, 21451);
  assert.deepStrictEqual(numbers(await search('US', 'Local', { AreaCode: '999' })), []);
});

test('capability filters require (true) or exclude (false) a capability', async () => {
  const q = { AreaCode: '512', PageSize: '1000' };
  const all = numbers(await search('US', 'Local', q));
  const fax = numbers(await search('US', 'Local', { ...q, FaxEnabled: 'true' }));
  const noFax = numbers(await search('US', 'Local', { ...q, FaxEnabled: 'false' }));
  assert.ok(fax.length > 0 && noFax.length > 0);
  assert.strictEqual(fax.length + noFax.length, all.length);
  assert.ok(fax.every((n) => n.capabilities.fax) && noFax.every((n) => !n.capabilities.fax));
  const both = numbers(await search('US', 'Local', { ...q, SmsEnabled: 'true', MmsEnabled: 'true', VoiceEnabled: 'true' }));
  assert.ok(both.length > 0 && both.every((n) => n.capabilities.SMS && n.capabilities.MMS && n.capabilities.voice));
  assert.deepStrictEqual(numbers(await search('GB', 'Local', { SmsEnabled: 'true' })), []);
  assertTwilioError(assert, await search('US', 'Local', { SmsEnabled: 'yes' }), 400, 400);
});

test('address requirement exclusions and Beta', async () => {
  const gb = numbers(await search('GB', 'Local', { PageSize: '1000' }));
  const reqs = new Set(gb.map((n) => n.address_requirements));
  assert.deepStrictEqual([...reqs].sort(), ['any', 'local']);
  const noLocal = numbers(await search('GB', 'Local', { PageSize: '1000', ExcludeLocalAddressRequired: 'true' }));
  assert.ok(noLocal.length > 0 && noLocal.every((n) => n.address_requirements === 'any'));
  assert.deepStrictEqual(numbers(await search('GB', 'Local', { ExcludeAllAddressRequired: 'true' })), []);
  assert.ok(numbers(await search('GB', 'Mobile', { ExcludeAllAddressRequired: 'true' })).length > 0);
  const withBeta = numbers(await search('US', 'Local', { PageSize: '1000' }));
  const noBeta = numbers(await search('US', 'Local', { PageSize: '1000', Beta: 'false' }));
  assert.ok(withBeta.some((n) => n.beta) && noBeta.every((n) => !n.beta));
});

test('In* filters by value or by a phone number, InRateCenter needs InLata', async () => {
  let list = numbers(await search('US', 'Local', { InRegion: 'IL', PageSize: '1000' }));
  assert.ok(list.length >= 200 && list.every((n) => n.region === 'IL'));
  list = numbers(await search('US', 'Local', { InPostalCode: '02139' }));
  assert.ok(list.length > 0 && list.every((n) => n.locality === 'Cambridge'));
  list = numbers(await search('US', 'Local', { InLocality: 'miami beach' }));
  assert.ok(list.length > 0 && list.every((n) => n.postal_code === '33139'));
  list = numbers(await search('US', 'Local', { InRateCenter: 'SAUSALITO', InLata: '722' }));
  assert.ok(list.length > 0 && list.every((n) => n.rate_center === 'SAUSALITO'));
  list = numbers(await search('US', 'Local', { InLata: '+14155550102', PageSize: '1000' }));
  assert.ok(list.length > 0 && list.every((n) => n.lata === '722'));
  assertTwilioError(assert, await search('US', 'Local', { InRateCenter: 'SAUSALITO' }), 400, 400);
});

test('NearNumber / NearLatLong with Distance', async () => {
  // Santa Monica and Beverly Hills are within 10 miles of downtown LA; Torrance is not within 5.
  let list = numbers(await search('US', 'Local', { NearLatLong: '34.0614,-118.2385', Distance: '10', PageSize: '1000' }));
  const places = new Set(list.map((n) => n.locality));
  assert.ok(places.has('Los Angeles') && places.has('Beverly Hills'));
  assert.ok(!places.has('San Francisco'));
  list = numbers(await search('US', 'Local', { NearLatLong: '34.0614,-118.2385', Distance: '5', PageSize: '1000' }));
  assert.ok(!list.some((n) => n.locality === 'Torrance'));
  list = numbers(await search('US', 'Local', { NearNumber: '+14155550103', PageSize: '1000' }));
  assert.ok(list.length > 0 && list.every((n) => ['San Francisco', 'Sausalito'].includes(n.locality)));
  assertTwilioError(assert, await search('US', 'Local', { NearLatLong: 'north' }), 400, 400);
  assertTwilioError(assert, await search('US', 'Local', { NearLatLong: '34,-118', Distance: '501' }), 400, 400);
});

test('toll-free, mobile and international inventory', async () => {
  const tf = numbers(await search('US', 'TollFree', { PageSize: '1000' }));
  assert.ok(tf.length >= 200);
  assert.ok(tf.every((n) => /^\+1(800|833|844|866|877|888)\d{7}$/.test(n.phone_number) && n.latitude === null && n.locality === null));
  assert.ok(numbers(await search('US', 'TollFree', { AreaCode: '888' })).every((n) => n.phone_number.startsWith('+1888')));
  const au = numbers(await search('AU', 'Mobile', { PageSize: '1000' }));
  assert.ok(au.length >= 100 && au.every((n) => n.phone_number.startsWith('+614') && n.iso_country === 'AU'));
  const de = numbers(await search('DE', 'Local', { PageSize: '5' }));
  assert.ok(de.every((n) => n.address_requirements === 'local' && n.friendly_name === n.phone_number));
  assert.ok(numbers(await search('CA', 'TollFree')).every((n) => n.phone_number.startsWith('+1855')));
});

test('inventory is deterministic per seed and differs between seeds', async () => {
  const other = await startEmulator(['--seed', '1']);
  const third = await startEmulator(['--seed', '42']);
  try {
    const q = { path: '/AvailablePhoneNumbers/US/Local.json', query: { AreaCode: '312', PageSize: '1000' } };
    const a = numbers(await emu.api('GET', q.path, q));
    const b = numbers(await other.api('GET', q.path, q));
    const c = numbers(await third.api('GET', q.path, q));
    assert.deepStrictEqual(a, b);
    assert.notDeepStrictEqual(a, c);
  } finally {
    await other.stop();
    await third.stop();
  }
});
