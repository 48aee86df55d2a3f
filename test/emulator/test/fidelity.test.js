'use strict';
// Fidelity: the official twilio library against the emulator directly.
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const { startEmulator } = require('./helpers');
const { runSuite } = require('./twilio-suite');

let emu;
before(async () => { emu = await startEmulator(); });
after(() => emu.stop());

test('the twilio library drives every endpoint; every field it exposes is defined', async (t) => {
  const base = emu.base;
  const { responses, checked } = await runSuite({ api: base, pricing: base, trunking: base, numbers: base, messaging: base }, emu.control);
  const log = await emu.control('GET', 'requests');
  assert.strictEqual(log.length, responses.length); // every library call reached the emulator once
  assert.ok(responses.length >= 40, `${responses.length} requests`);
  assert.ok(checked > 1000, `${checked} fields checked`);
  t.diagnostic(`fidelity: ${responses.length} requests, ${checked} library fields defined`);
});
