'use strict';
// POST /_emulator/numbers: many numbers in an account at once, as if each had
// been bought through the API — the scale tests' accounts (tens of thousands
// of numbers, far beyond the seeded inventory), listed, fetched and released
// like any other.
const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert');
const { startEmulator, assertTwilioError, ACCOUNT } = require('./helpers');

let emu;
before(async () => { emu = await startEmulator(); });
after(() => emu.stop());
beforeEach(() => emu.control('POST', 'reset'));

const LIST = '/IncomingPhoneNumbers.json';
const bulk = (json) => emu.req('POST', '/_emulator/numbers', { json, auth: false });

// Every page of an account's listing, following next_page_uri as a client does.
async function listAll(account = ACCOUNT, pageSize = 1000) {
  const pages = [];
  let res = await emu.api('GET', LIST, { account, query: { PageSize: String(pageSize) } });
  for (;;) {
    assert.strictEqual(res.status, 200, res.text);
    pages.push(res.json.incoming_phone_numbers);
    if (!res.json.next_page_uri) break;
    res = await emu.req('GET', res.json.next_page_uri);
  }
  return pages;
}

test('count numbers owned at once: listed in pages, each a number as the API sells it', async () => {
  const res = await bulk({ count: 25000 });
  assert.strictEqual(res.status, 201, res.text);
  assert.strictEqual(res.json.account_sid, ACCOUNT);
  assert.strictEqual(res.json.count, 25000);
  const pages = await listAll();
  assert.strictEqual(pages.length, 25);
  const all = pages.flat();
  assert.strictEqual(all.length, 25000);
  assert.strictEqual(new Set(all.map((n) => n.phone_number)).size, 25000);
  assert.strictEqual(new Set(all.map((n) => n.sid)).size, 25000);
  assert.deepStrictEqual(all.map((n) => n.phone_number), all.map((n) => n.phone_number).sort());
  const phones = new Set(all.map((n) => n.phone_number));
  assert.ok(phones.has(res.json.first_phone_number) && phones.has(res.json.last_phone_number));
  for (const n of all) {
    assert.match(n.sid, /^PN[0-9a-f]{32}$/);
    assert.match(n.phone_number, /^\+1[2-9]\d{9}$/);
    assert.strictEqual(n.account_sid, ACCOUNT);
    assert.strictEqual(n.origin, 'twilio');
    assert.strictEqual(n.address_requirements, 'none');
  }
  // a number of them: fetched, then released like one bought through the API
  const one = all[12345];
  const got = await emu.api('GET', `/IncomingPhoneNumbers/${one.sid}.json`);
  assert.strictEqual(got.status, 200);
  assert.strictEqual(got.json.phone_number, one.phone_number);
  assert.strictEqual((await emu.api('DELETE', `/IncomingPhoneNumbers/${one.sid}.json`)).status, 204);
  assert.strictEqual((await listAll()).flat().length, 24999);
  // not inventory: neither for sale while owned nor after its release
  assertTwilioError(assert, await emu.api('POST', LIST, { form: { PhoneNumber: all[0].phone_number } }), 400, 21422);
  assertTwilioError(assert, await emu.api('POST', LIST, { form: { PhoneNumber: one.phone_number } }), 400, 21422);
});

test('the inventory is untouched; a second call adds other numbers; a reset clears them', async () => {
  const search = async () => (await emu.api('GET', '/AvailablePhoneNumbers/US/Local.json',
    { query: { AreaCode: '415', PageSize: '1000' } })).json.available_phone_numbers.map((n) => n.phone_number);
  const before = await search();
  assert.ok(before.length > 100);
  const a = await bulk({ count: 3000, area_code: '415' });
  const b = await bulk({ count: 3000, area_code: 415 });
  assert.strictEqual(a.status, 201);
  assert.strictEqual(b.status, 201);
  assert.ok(a.json.first_phone_number.startsWith('+1415'));
  assert.deepStrictEqual(await search(), before);
  const all = (await listAll()).flat();
  assert.strictEqual(all.length, 6000);
  assert.strictEqual(new Set(all.map((n) => n.phone_number)).size, 6000);
  assert.ok(all.every((n) => n.phone_number.startsWith('+1415') && !before.includes(n.phone_number)));
  // an inventory number bought through the API is not taken again
  const bought = await emu.api('POST', LIST, { form: { PhoneNumber: before[0] } });
  assert.strictEqual(bought.status, 201);
  await bulk({ count: 10 });
  assert.strictEqual((await emu.control('GET', 'state')).numbers.filter((n) => n.phone_number === before[0]).length, 1);
  await emu.control('POST', 'reset');
  assert.deepStrictEqual(await listAll(), [[]]);
});

test('into a subaccount; wrong counts, accounts and area codes are refused', async () => {
  const created = await emu.req('POST', '/2010-04-01/Accounts.json', { form: { FriendlyName: 'customer' } });
  assert.strictEqual(created.status, 201);
  const subSid = created.json.sid;
  assert.strictEqual((await bulk({ count: 1500, account_sid: subSid })).status, 201);
  const inSub = (await listAll(subSid)).flat();
  assert.strictEqual(inSub.length, 1500);
  assert.ok(inSub.every((n) => n.account_sid === subSid));
  assert.deepStrictEqual(await listAll(), [[]]);
  for (const json of [{}, { count: 0 }, { count: 1.5 }, { count: '10' }, { count: 200001 },
    { count: 1, account_sid: 'AC00000000000000000000000000000000' }, { count: 1, area_code: '999' }]) {
    const res = await bulk(json);
    assert.strictEqual(res.status, 400, JSON.stringify(json));
  }
  assert.deepStrictEqual(await listAll(), [[]]);
});
