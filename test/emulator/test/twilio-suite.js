'use strict';
// The fidelity scenario: the official `twilio` helper library drives the
// emulator through search, buy, fetch, update, the owned list past one page,
// subaccount transfer, release, pricing, trunks, hosted orders and Messaging
// Services with their sender pools (and an emergency address), and checks
// that every field the library exposes on those resources is defined (the
// library copies each wire field into a property, so a field missing from a
// reply shows up as `undefined`). Used directly by fidelity.test.js and
// through Prism by contract.test.js; `targets` maps each Twilio host to the
// base URL that should serve it.

const assert = require('node:assert');
const twilio = require('twilio');
const { ACCOUNT, TOKEN, API_KEY, API_SECRET } = require('./helpers');
const { runRegulatory } = require('./regulatory-suite');

// Twilio's hosts by path prefix: the library addresses real hostnames and
// follows absolute next-page URLs, so every URL is re-targeted by its path.
function retarget(uri, targets) {
  const u = new URL(uri);
  const p = u.pathname;
  const host = p.startsWith('/2010-04-01/') ? 'api' : p.startsWith('/v1/PhoneNumbers') ? 'pricing'
    : p.startsWith('/v1/Trunks') ? 'trunking' : p.startsWith('/v2/HostedNumber') ? 'numbers'
    : p.startsWith('/v2/RegulatoryCompliance') ? 'numbers'
    : p.startsWith('/v1/Services') ? 'messaging' : null;
  if (!host) throw new Error(`no target for ${uri}`);
  return targets[host] + p + u.search;
}

function makeClient(targets, responses, creds = [ACCOUNT, TOKEN, {}]) {
  class RetargetingClient extends twilio.RequestClient {
    async request(opts) {
      const uri = retarget(opts.uri, targets);
      const res = await super.request({ ...opts, uri });
      responses.push({ method: opts.method.toUpperCase(), uri, statusCode: res.statusCode, headers: res.headers });
      return res;
    }
  }
  return twilio(creds[0], creds[1], { ...creds[2], httpClient: new RetargetingClient() });
}

// Every public property the library set from the payload must be defined.
// `notInList` names properties the library shares with the fetched resource
// that the list resource's own schema (and Twilio's reply) does not have.
function allDefined(instance, what, notInList = []) {
  const props = Object.keys(instance).filter((k) => !k.startsWith('_') && !notInList.includes(k));
  assert.ok(props.length >= 3, `${what}: no properties`);
  for (const k of props) assert.notStrictEqual(instance[k], undefined, `${what}.${k} is undefined`);
  return props.length;
}

async function runSuite(targets, control) {
  const responses = [];
  const client = makeClient(targets, responses);
  let checked = 0;
  const check = (inst, what, notInList) => { checked += allDefined(inst, what, notInList); };

  // 60-number search in one page.
  const found = await client.availablePhoneNumbers('US').local.list({ areaCode: 415, limit: 60, pageSize: 60 });
  assert.strictEqual(found.length, 60);
  found.forEach((n) => check(n, 'AvailablePhoneNumberLocal'));
  assert.strictEqual(responses.filter((r) => r.uri.includes('/AvailablePhoneNumbers/')).length, 1);
  assert.strictEqual(typeof found[0].latitude, 'string'); // Twilio's wire form passes through
  assert.strictEqual(typeof found[0].capabilities.SMS, 'boolean');
  check(await client.availablePhoneNumbers('GB').fetch(), 'AvailablePhoneNumberCountry');
  (await client.availablePhoneNumbers.list()).forEach((c) => check(c, 'AvailablePhoneNumberCountry'));
  (await client.availablePhoneNumbers('US').tollFree.list({ limit: 5 })).forEach((n) => check(n, 'AvailablePhoneNumberTollFree'));
  (await client.availablePhoneNumbers('GB').mobile.list({ limit: 5 })).forEach((n) => check(n, 'AvailablePhoneNumberMobile'));

  // Buy, fetch, update.
  const bought = await client.incomingPhoneNumbers.create({ phoneNumber: found[0].phoneNumber, friendlyName: 'Fidelity', smsUrl: 'https://example.com/sms' });
  check(bought, 'IncomingPhoneNumber');
  assert.strictEqual(bought.phoneNumber, found[0].phoneNumber);
  assert.ok(bought.dateCreated instanceof Date && !Number.isNaN(bought.dateCreated.getTime()));
  const fetched = await client.incomingPhoneNumbers(bought.sid).fetch();
  check(fetched, 'IncomingPhoneNumber');
  assert.strictEqual(fetched.friendlyName, 'Fidelity');
  const updated = await client.incomingPhoneNumbers(bought.sid).update({ voiceUrl: 'https://example.com/voice', voiceMethod: 'GET' });
  assert.strictEqual(updated.voiceUrl, 'https://example.com/voice');
  assert.strictEqual(updated.voiceMethod, 'GET');
  const local = await client.incomingPhoneNumbers.local.create({ phoneNumber: found[1].phoneNumber });
  check(local, 'IncomingPhoneNumberLocal');
  await assert.rejects(client.incomingPhoneNumbers.create({ phoneNumber: found[0].phoneNumber }), (e) => e.status === 400 && e.code === 21422);

  // The owned list, paged past one page.
  for (const n of found.slice(2, 7)) await client.incomingPhoneNumbers.create({ phoneNumber: n.phoneNumber });
  const before = responses.length;
  const owned = await client.incomingPhoneNumbers.list({ pageSize: 3 });
  assert.strictEqual(owned.length, 7);
  assert.strictEqual(responses.length - before, 3);
  owned.forEach((n) => check(n, 'IncomingPhoneNumber'));
  (await client.incomingPhoneNumbers.local.list({ pageSize: 5 })).forEach((n) => check(n, 'IncomingPhoneNumberLocal'));

  // Transfer to a subaccount, then use the API key credentials.
  const sub = await client.api.v2010.accounts.create({ friendlyName: 'Fidelity customer' });
  check(sub, 'Account');
  const moved = await client.incomingPhoneNumbers(bought.sid).update({ accountSid: sub.sid });
  assert.strictEqual(moved.accountSid, sub.sid);
  const inSub = await client.api.v2010.accounts(sub.sid).incomingPhoneNumbers(bought.sid).fetch();
  check(inSub, 'IncomingPhoneNumber');
  (await client.api.v2010.accounts.list()).forEach((a) => check(a, 'Account'));
  const keyClient = makeClient(targets, responses, [API_KEY, API_SECRET, { accountSid: ACCOUNT }]);
  assert.strictEqual((await keyClient.incomingPhoneNumbers.list()).length, 6);

  // Release.
  assert.strictEqual(await client.api.v2010.accounts(sub.sid).incomingPhoneNumbers(bought.sid).remove(), true);
  await assert.rejects(client.api.v2010.accounts(sub.sid).incomingPhoneNumbers(bought.sid).fetch(), (e) => e.status === 404 && e.code === 20404);

  // Pricing.
  const countries = await client.pricing.v1.phoneNumbers.countries.list({ pageSize: 3 });
  assert.strictEqual(countries.length, 10);
  countries.forEach((c) => check(c, 'PricingCountry', ['phoneNumberPrices', 'priceUnit']));
  const gb = await client.pricing.v1.phoneNumbers.countries('GB').fetch();
  check(gb, 'PricingCountryInstance');
  assert.deepStrictEqual({ ...gb.phoneNumberPrices[0] }, { basePrice: '1.15', currentPrice: '1.15', numberType: 'local' });
  gb.phoneNumberPrices.forEach((p) => check(p, 'PhoneNumberPrice'));

  // Trunk association.
  const trunk = await client.trunking.v1.trunks.create({ friendlyName: 'Fidelity trunk' });
  check(trunk, 'Trunk');
  check(await client.trunking.v1.trunks(trunk.sid).fetch(), 'Trunk');
  (await client.trunking.v1.trunks.list()).forEach((t) => check(t, 'Trunk'));
  const assoc = await client.trunking.v1.trunks(trunk.sid).phoneNumbers.create({ phoneNumberSid: local.sid });
  check(assoc, 'TrunkPhoneNumber');
  assert.strictEqual((await client.incomingPhoneNumbers(local.sid).fetch()).trunkSid, trunk.sid);
  const second = owned.find((n) => n.sid !== local.sid && n.accountSid === ACCOUNT && n.sid !== bought.sid);
  await client.trunking.v1.trunks(trunk.sid).phoneNumbers.create({ phoneNumberSid: second.sid });
  const onTrunk = await client.trunking.v1.trunks(trunk.sid).phoneNumbers.list({ pageSize: 1 });
  assert.strictEqual(onTrunk.length, 2);
  onTrunk.forEach((n) => check(n, 'TrunkPhoneNumber'));
  check(await client.trunking.v1.trunks(trunk.sid).phoneNumbers(local.sid).fetch(), 'TrunkPhoneNumber');
  assert.strictEqual(await client.trunking.v1.trunks(trunk.sid).phoneNumbers(local.sid).remove(), true);
  assert.strictEqual((await client.incomingPhoneNumbers(local.sid).fetch()).trunkSid, null);

  // Hosted orders.
  const order = await client.numbers.v2.hostedNumberOrders.create({
    phoneNumber: '+15017122661', contactPhoneNumber: '+15017122662', addressSid: 'AD0123456789abcdef0123456789abcdef',
    email: 'owner@example.com', ccEmails: ['a@example.com', 'b@example.com'], friendlyName: 'Fidelity hosted',
  });
  check(order, 'HostedNumberOrder');
  assert.deepStrictEqual(order.ccEmails, ['a@example.com', 'b@example.com']);
  const verifying = await client.numbers.v2.hostedNumberOrders(order.sid).update({ status: 'pending-verification' });
  assert.strictEqual(verifying.status, 'pending-verification');
  await control('POST', `hosted/${order.sid}`, { status: 'completed' });
  const completed = await client.numbers.v2.hostedNumberOrders(order.sid).fetch();
  check(completed, 'HostedNumberOrder');
  const hostedNumber = await client.incomingPhoneNumbers(completed.incomingPhoneNumberSid).fetch();
  assert.strictEqual(hostedNumber.origin, 'hosted');
  const other = await client.numbers.v2.hostedNumberOrders.create({
    phoneNumber: '+15017122663', contactPhoneNumber: '+15017122662', addressSid: 'AD0123456789abcdef0123456789abcdef', email: 'o@example.com' });
  const listed = await client.numbers.v2.hostedNumberOrders.list({ pageSize: 1 });
  assert.strictEqual(listed.length, 2);
  listed.forEach((o) => check(o, 'HostedNumberOrder'));
  assert.deepStrictEqual((await client.numbers.v2.hostedNumberOrders.list({ status: 'completed' })).map((o) => o.sid), [order.sid]);
  assert.strictEqual(await client.numbers.v2.hostedNumberOrders(other.sid).remove(), true);
  await assert.rejects(client.numbers.v2.hostedNumberOrders(order.sid).remove(), (e) => e.status === 400);

  // Messaging Services and their sender pools.
  const service = await client.messaging.v1.services.create({ friendlyName: 'Fidelity SMS', usecase: 'notifications' });
  check(service, 'MessagingService');
  check(await client.messaging.v1.services(service.sid).fetch(), 'MessagingService');
  const updatedService = await client.messaging.v1.services(service.sid).update({ friendlyName: 'Fidelity SMS 2' });
  assert.strictEqual(updatedService.friendlyName, 'Fidelity SMS 2');
  const smsCapable = owned.filter((n) => n.accountSid === ACCOUNT && n.sid !== bought.sid && n.capabilities.sms);
  assert.ok(smsCapable.length >= 2, 'two SMS-capable numbers in the main account');
  const sender = await client.messaging.v1.services(service.sid).phoneNumbers.create({ phoneNumberSid: smsCapable[0].sid });
  check(sender, 'ServicePhoneNumber');
  assert.ok(Array.isArray(sender.capabilities) && sender.capabilities.includes('SMS'));
  await client.messaging.v1.services(service.sid).phoneNumbers.create({ phoneNumberSid: smsCapable[1].sid });
  const senders = await client.messaging.v1.services(service.sid).phoneNumbers.list({ pageSize: 1 });
  assert.strictEqual(senders.length, 2);
  senders.forEach((n) => check(n, 'ServicePhoneNumber'));
  check(await client.messaging.v1.services(service.sid).phoneNumbers(smsCapable[0].sid).fetch(), 'ServicePhoneNumber');
  const otherService = await client.messaging.v1.services.create({ friendlyName: 'Fidelity other' });
  await assert.rejects(client.messaging.v1.services(otherService.sid).phoneNumbers.create({ phoneNumberSid: smsCapable[0].sid }),
    (e) => e.status === 400 && e.code === 21712);
  (await client.messaging.v1.services.list({ pageSize: 1 })).forEach((s) => check(s, 'MessagingService'));
  assert.strictEqual(await client.messaging.v1.services(service.sid).phoneNumbers(smsCapable[0].sid).remove(), true);
  assert.strictEqual(await client.messaging.v1.services(otherService.sid).remove(), true);

  // An emergency address: registered, then removed before the release.
  const e911 = await client.incomingPhoneNumbers(local.sid).update({ emergencyAddressSid: 'AD0123456789abcdef0123456789abcdef' });
  assert.strictEqual(e911.emergencyAddressStatus, 'registered');
  await assert.rejects(client.incomingPhoneNumbers(local.sid).remove(), (e) => e.status === 400);
  assert.strictEqual((await client.incomingPhoneNumbers(local.sid).update({ emergencyAddressSid: '' })).emergencyAddressStatus, 'unregistered');

  // Clean-up through the library too.
  assert.strictEqual(await client.messaging.v1.services(service.sid).remove(), true);
  assert.strictEqual(await client.trunking.v1.trunks(trunk.sid).remove(), true);
  assert.strictEqual(await client.incomingPhoneNumbers(local.sid).remove(), true);

  // Addresses, Regulations, Bundles, Clones (regulatory-suite.js).
  await runRegulatory(client, control, check);
  return { responses, checked };
}

module.exports = { runSuite, retarget };
