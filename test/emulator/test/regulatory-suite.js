'use strict';
// The regulatory part of the fidelity scenario (run by twilio-suite.js):
// the official `twilio` library creates, fetches, updates, lists and deletes
// Addresses, lists an address's DependentPhoneNumbers, reads Regulations,
// creates a Bundle, evaluates it before and after submitting it, and clones an approved one into a
// subaccount, then moves a German number there with the clone and a copy of
// the address. Every field the library exposes must be defined.

const assert = require('node:assert');

async function runRegulatory(client, control, check) {
  const berlin = { customerName: 'Muster GmbH', street: 'Unter den Linden 1', city: 'Berlin', region: 'BE', postalCode: '10117', isoCountry: 'DE' };
  const addr = await client.addresses.create({ ...berlin, friendlyName: 'HQ', emergencyEnabled: false });
  check(addr, 'Address');
  check(await client.addresses(addr.sid).fetch(), 'Address');
  const updated = await client.addresses(addr.sid).update({ friendlyName: 'Head office' });
  assert.strictEqual(updated.friendlyName, 'Head office');
  await assert.rejects(client.addresses.create({ ...berlin, postalCode: '1' }), (e) => e.status === 400 && e.code === 21628);
  const spare = await client.addresses.create({ ...berlin, customerName: 'Spare' });
  (await client.addresses.list({ pageSize: 1 })).forEach((a) => check(a, 'Address'));
  assert.strictEqual(await client.addresses(spare.sid).remove(), true);

  const regs = await client.numbers.v2.regulatoryCompliance.regulations.list({ isoCountry: 'DE', numberType: 'local', endUserType: 'business' });
  assert.strictEqual(regs.length, 1);
  regs.forEach((r) => check(r, 'Regulation'));
  check(await client.numbers.v2.regulatoryCompliance.regulations(regs[0].sid).fetch(), 'Regulation');

  const draft = await client.numbers.v2.regulatoryCompliance.bundles.create({ friendlyName: 'Muster GmbH', email: 'c@example.com',
    regulationSid: regs[0].sid });
  check(draft, 'Bundle');
  const failing = await client.numbers.v2.regulatoryCompliance.bundles(draft.sid).evaluations.create();
  check(failing, 'Evaluation');
  assert.strictEqual(failing.status, 'noncompliant');
  assert.strictEqual((await client.numbers.v2.regulatoryCompliance.bundles(draft.sid).update({ status: 'pending-review' })).status, 'pending-review');
  const passing = await client.numbers.v2.regulatoryCompliance.bundles(draft.sid).evaluations.create();
  assert.strictEqual(passing.status, 'compliant');
  check(await client.numbers.v2.regulatoryCompliance.bundles(draft.sid).evaluations(passing.sid).fetch(), 'Evaluation');
  (await client.numbers.v2.regulatoryCompliance.bundles(draft.sid).evaluations.list()).forEach((e) => check(e, 'Evaluation'));
  await control('POST', `bundles/${draft.sid}`, { status: 'twilio-approved' });
  const bundle = await client.numbers.v2.regulatoryCompliance.bundles(draft.sid).fetch();
  check(bundle, 'Bundle');
  assert.strictEqual(bundle.status, 'twilio-approved');
  (await client.numbers.v2.regulatoryCompliance.bundles.list({ isoCountry: 'DE' })).forEach((b) => check(b, 'Bundle'));

  const found = await client.availablePhoneNumbers('DE').local.list({ limit: 1 });
  const n = await client.incomingPhoneNumbers.create({ phoneNumber: found[0].phoneNumber, addressSid: addr.sid, bundleSid: bundle.sid });
  const deps = await client.addresses(addr.sid).dependentPhoneNumbers.list();
  assert.deepStrictEqual(deps.map((d) => d.phoneNumber), [n.phoneNumber]);
  deps.forEach((d) => check(d, 'DependentPhoneNumber'));
  await assert.rejects(client.addresses(addr.sid).remove(), (e) => e.status === 400);

  const sub = await client.api.v2010.accounts.create({ friendlyName: 'Regulated customer' });
  await assert.rejects(client.incomingPhoneNumbers(n.sid).update({ accountSid: sub.sid }), (e) => e.status === 400 && e.code === 21613);
  const clone = await client.numbers.v2.bundleClone(bundle.sid).create({ targetAccountSid: sub.sid });
  check(clone, 'BundleClone');
  assert.strictEqual(clone.accountSid, sub.sid);
  const subAddr = await client.api.v2010.accounts(sub.sid).addresses.create(berlin);
  check(subAddr, 'Address');
  const moved = await client.incomingPhoneNumbers(n.sid).update({ accountSid: sub.sid, addressSid: subAddr.sid, bundleSid: clone.bundleSid });
  assert.strictEqual(moved.accountSid, sub.sid);
  assert.strictEqual(await client.api.v2010.accounts(sub.sid).incomingPhoneNumbers(n.sid).remove(), true);
  assert.strictEqual(await client.addresses(addr.sid).remove(), true);
}

module.exports = { runRegulatory };
