'use strict';
// The test controls under /_emulator/: JSON in and out, no
// auth, never logged and never hit by faults.

const { addFault, publicFault } = require('../faults');
const { moveOrder } = require('./hosted');
const { badParam, notFound } = require('../errors');
const { publicEntry } = require('../requestlog');
const { US_AREA_CODES } = require('../geo');

module.exports = (emu) => {
  emu.control('POST', /^\/_emulator\/reset$/, ({ state }) => {
    state.reset();
    return { body: { ok: true, now: state.now().toISOString() } };
  });
  emu.control('GET', /^\/_emulator\/requests$/, ({ state }) => ({ body: state.log.slice(-state.maxLog).map(publicEntry) }));
  emu.control('DELETE', /^\/_emulator\/requests$/, ({ state }) => {
    state.log = [];
    return { body: { ok: true } };
  });
  emu.control('POST', /^\/_emulator\/faults$/, ({ state, json }) => ({ status: 201, body: publicFault(addFault(state, json)) }));
  emu.control('GET', /^\/_emulator\/faults$/, ({ state }) => ({ body: state.faults.map(publicFault) }));
  emu.control('DELETE', /^\/_emulator\/faults$/, ({ state }) => {
    state.faults = [];
    return { body: { ok: true } };
  });
  // the account's concurrency limit (0: none) and what was in flight
  const limits = (state) => ({
    concurrent_requests: state.concurrencyLimit, in_flight: state.inFlight, max_in_flight: state.maxInFlight,
    limited: state.limited,
  });
  emu.control('GET', /^\/_emulator\/limits$/, ({ state }) => ({ body: limits(state) }));
  emu.control('POST', /^\/_emulator\/limits$/, ({ state, json }) => {
    if (json.concurrent_requests !== undefined) {
      const n = json.concurrent_requests;
      if (!Number.isInteger(n) || n < 0) throw badParam('concurrent_requests must be an integer >= 0 (0: no limit)');
      state.concurrencyLimit = n;
    }
    if (json.reset_max === true) state.maxInFlight = state.inFlight;
    return { body: limits(state) };
  });
  // Many numbers in an account at once, as if each had been bought through
  // the API (scale tests: far more than the inventory sells)
  emu.control('POST', /^\/_emulator\/numbers$/, ({ state, json }) => {
    const count = json.count;
    if (!Number.isInteger(count) || count < 1 || count > 200000) throw badParam('count must be an integer from 1 to 200000');
    const account = json.account_sid === undefined ? state.main.sid : json.account_sid;
    if (!state.accounts.has(account)) throw badParam(`no account ${account}`);
    const areaCode = json.area_code === undefined ? null : String(json.area_code);
    if (areaCode !== null && !US_AREA_CODES[areaCode]) {
      throw badParam(`area_code must be one of ${Object.keys(US_AREA_CODES).sort().join(', ')}`);
    }
    // (an area code has about 8 million candidates: count always fits)
    const made = state.ownMany(account, count, areaCode);
    return {
      status: 201,
      body: { account_sid: account, count: made.length, first_phone_number: made[0].phone,
        last_phone_number: made[made.length - 1].phone },
    };
  });
  emu.control('GET', /^\/_emulator\/clock$/, ({ state }) => ({ body: { now: state.now().toISOString() } }));
  emu.control('POST', /^\/_emulator\/clock$/, ({ state, json }) => {
    if (json.now !== undefined) {
      const t = Date.parse(json.now);
      if (Number.isNaN(t)) throw badParam(`now is not an ISO-8601 time: ${json.now}`);
      state.clockOffsetMs = t - Date.now();
    }
    if (json.advance_s !== undefined) {
      if (typeof json.advance_s !== 'number' || !Number.isFinite(json.advance_s)) throw badParam('advance_s must be a number');
      state.clockOffsetMs += json.advance_s * 1000;
    }
    if (json.now === undefined && json.advance_s === undefined) throw badParam('give now (ISO-8601) or advance_s (seconds)');
    return { body: { now: state.now().toISOString() } };
  });
  emu.control('POST', /^\/_emulator\/hosted\/(?<Sid>[^/]+)$/, ({ state, json, params }) => {
    const o = state.orders.get(params.Sid);
    if (!o) throw notFound(`/v2/HostedNumber/Orders/${params.Sid}`);
    moveOrder(state, o, json.status, json.failure_reason);
    return {
      body: { sid: o.sid, status: o.status, incoming_phone_number_sid: o.incoming_phone_number_sid, failure_reason: o.failure_reason },
    };
  });
  emu.control('GET', /^\/_emulator\/state$/, ({ state }) => ({ body: state.snapshot() }));
};
