'use strict';
// Everything the emulator remembers: accounts, owned numbers, trunks, hosted
// number orders, the clock, the request log and the faults. It lives in
// memory; reset() returns to the seeded starting point.
//
// SIDs are never handed out twice, as on Twilio: each is a per-prefix counter
// hashed with the seed and a random nonce drawn when the process starts, and
// reset() keeps the counters. A database that outlives a reset or a restart
// (same seed or not) never meets an old SID. --deterministic-sids drops the
// nonce and lets reset() clear the counters, so that a replayed scenario gets
// the same SIDs again (for snapshots of emulator output).

const crypto = require('crypto');
const { Inventory, bulkRecord } = require('./inventory');
const { US_AREA_CODES } = require('./geo');

class State {
  constructor(opts) {
    this.opts = opts;
    this.inventory = new Inventory(opts.seed);
    this.maxLog = opts.maxLog || 100000;
    this.sidNonce = opts.deterministicSids ? null : crypto.randomBytes(16).toString('hex');
    this.counters = {};
    this.inFlight = 0;
    this.reset();
  }

  reset() {
    this.inventory.reset();
    if (this.opts.deterministicSids) this.counters = {};
    this.clockOffsetMs = 0;
    this.numbers = new Map(); //   PN sid -> owned number
    this.sorted = null; //         every owned number by phone (listings), rebuilt after a change
    this.byPhone = new Map(); //   phone -> owned number
    this.sidKey = new Map(); //    every SID ever issued -> its sort key (page tokens)
    this.trunks = new Map(); //    TK sid -> trunk
    this.orders = new Map(); //    HR sid -> hosted number order
    this.addresses = new Map(); // AD sid -> address (routes/addresses.js)
    this.bundles = new Map(); //   BU sid -> regulatory bundle (routes/regulatory.js)
    this.services = new Map(); //  MG sid -> Messaging Service (routes/messaging.js)
    this.faults = [];
    this.faultSeq = 0;
    // the account's concurrency limit (0: none), as the command line set it;
    // inFlight (API requests being served) is not reset: they are still open
    this.concurrencyLimit = this.opts.concurrencyLimit || 0;
    this.maxInFlight = 0;
    this.limited = 0;
    this.log = [];
    this.logSeq = 0;
    this.accounts = new Map();
    const created = this.now();
    this.main = {
      sid: this.opts.accountSid, auth_token: this.opts.authToken, owner_account_sid: this.opts.accountSid,
      friendly_name: 'Emulated main account', status: 'active', type: 'Full', created, updated: created, parent: null,
    };
    this.accounts.set(this.main.sid, this.main);
  }

  now() {
    return new Date(Date.now() + this.clockOffsetMs);
  }

  newSid(prefix) {
    const n = (this.counters[prefix] = (this.counters[prefix] || 0) + 1);
    const input = this.sidNonce ? `${this.opts.seed}:${prefix}:${n}:${this.sidNonce}` : `${this.opts.seed}:${prefix}:${n}`;
    return prefix + crypto.createHash('md5').update(input).digest('hex');
  }

  // Which account a set of Basic credentials acts as, or null.
  authenticate(user, pass) {
    if (this.opts.apiKey && user === this.opts.apiKey && pass === this.opts.apiSecret) return this.main;
    const acct = this.accounts.get(user);
    return acct && acct.auth_token === pass ? acct : null;
  }

  // A principal may act on its own account and, for the main account, on its subaccounts.
  canAccess(principal, accountSid) {
    const acct = this.accounts.get(accountSid);
    return !!acct && (acct === principal || acct.parent === principal.sid);
  }

  createSubaccount(friendlyName) {
    const created = this.now();
    const sid = this.newSid('AC');
    const acct = {
      sid, auth_token: crypto.createHash('md5').update(`${this.opts.seed}:token:${sid}`).digest('hex'),
      owner_account_sid: this.main.sid, parent: this.main.sid, status: 'active', type: 'Full', created, updated: created,
      friendly_name: friendlyName || `SubAccount Created at ${created.toISOString().slice(0, 16).replace('T', ' ')}`,
    };
    this.accounts.set(sid, acct);
    return acct;
  }

  // Owns a number for an account: inventory numbers leave the inventory.
  own(account, rec, origin, config) {
    const t = this.now();
    const sid = this.newSid('PN');
    const num = {
      sid, account, rec, phone: rec.phone, origin, created: t, updated: t,
      friendly_name: rec.friendly, api_version: '2010-04-01',
      voice_url: null, voice_method: 'POST', voice_fallback_url: null, voice_fallback_method: 'POST',
      voice_caller_id_lookup: false, voice_application_sid: null, voice_receive_mode: 'voice',
      sms_url: null, sms_method: 'POST', sms_fallback_url: null, sms_fallback_method: 'POST', sms_application_sid: null,
      status_callback: null, status_callback_method: 'POST', trunk_sid: null,
      address_sid: null, bundle_sid: null, identity_sid: null,
      emergency_status: 'Inactive', emergency_address_sid: null, emergency_address_status: 'unregistered',
      messaging_service_sid: null, messaging_added: null,
    };
    Object.assign(num, config);
    if (rec.taken !== undefined) rec.taken = true;
    this.numbers.set(sid, num);
    this.byPhone.set(num.phone, num);
    this.sidKey.set(sid, num.phone);
    this.sorted = null;
    return num;
  }

  // Owns count US local numbers for an account at once, each as a purchase
  // through the API would (a new PN SID, origin twilio, created now): the
  // scale tests' accounts, far beyond the seeded inventory. The numbers are
  // drawn from the 555 exchanges (then others) of the US area codes (or the
  // one given), skipping every number the inventory or an account holds; they
  // are not inventory (a released one is gone, not available again).
  ownMany(account, count, areaCode) {
    const npas = areaCode ? [areaCode] : Object.keys(US_AREA_CODES).sort();
    const exchanges = ['555'];
    for (let x = 200; x <= 999; x++) if (x !== 555) exchanges.push(String(x));
    const made = [];
    for (const npa of npas) {
      for (const exchange of exchanges) {
        for (let line = 0; line < 10000 && made.length < count; line++) {
          const phone = `+1${npa}${exchange}${String(line).padStart(4, '0')}`;
          if (this.byPhone.has(phone) || this.inventory.byPhone.has(phone)) continue;
          made.push(this.own(account, bulkRecord(phone, npa, US_AREA_CODES[npa]), 'twilio', {}));
        }
        if (made.length >= count) return made;
      }
    }
    return made;
  }

  release(num) {
    this.numbers.delete(num.sid);
    this.byPhone.delete(num.phone);
    this.sorted = null;
    if (num.origin !== 'hosted') this.inventory.release(num.phone);
  }

  // Sorted (by phone number) owned numbers of one account.
  numbersOf(accountSid) {
    if (this.sorted === null) {
      this.sorted = [...this.numbers.values()].sort((a, b) => (a.phone < b.phone ? -1 : a.phone > b.phone ? 1 : 0));
    }
    return this.sorted.filter((n) => n.account === accountSid);
  }

  record(entry) {
    entry.seq = ++this.logSeq;
    this.log.push(entry);
    // Trim in chunks, not per request, so a full log costs nothing on the hot path.
    if (this.log.length > this.maxLog + Math.ceil(this.maxLog / 10)) this.log.splice(0, this.log.length - this.maxLog);
    return entry;
  }

  snapshot() {
    const num = (n) => ({
      sid: n.sid, phone_number: n.phone, account_sid: n.account, trunk_sid: n.trunk_sid, origin: n.origin,
      iso_country: n.rec.iso, number_type: n.rec.type, friendly_name: n.friendly_name,
      address_sid: n.address_sid, bundle_sid: n.bundle_sid, date_created: n.created.toISOString(),
      messaging_service_sid: n.messaging_service_sid, emergency_address_sid: n.emergency_address_sid,
      emergency_address_status: n.emergency_address_status,
    });
    return {
      now: this.now().toISOString(),
      numbers: [...this.numbers.values()].sort((a, b) => (a.phone < b.phone ? -1 : 1)).map(num),
      trunks: [...this.trunks.values()].map((t) => ({
        sid: t.sid, account_sid: t.account, friendly_name: t.friendly_name, domain_name: t.domain_name,
        phone_numbers: [...this.numbers.values()].filter((n) => n.trunk_sid === t.sid).map((n) => n.phone).sort(),
      })),
      messaging_services: [...this.services.values()].map((s) => ({
        sid: s.sid, account_sid: s.account, friendly_name: s.friendly_name,
        phone_numbers: this.numbersOf(s.account).filter((n) => n.messaging_service_sid === s.sid).map((n) => n.phone),
      })),
      hosted_orders: [...this.orders.values()].map((o) => ({
        sid: o.sid, account_sid: o.account, phone_number: o.phone_number, status: o.status,
        incoming_phone_number_sid: o.incoming_phone_number_sid,
      })),
      addresses: [...this.addresses.values()].map((a) => ({
        sid: a.sid, account_sid: a.account, customer_name: a.customer_name, iso_country: a.iso_country,
        validated: a.validated, verified: a.verified,
      })),
      bundles: [...this.bundles.values()].map((b) => ({
        sid: b.sid, account_sid: b.account, regulation_sid: b.regulation_sid, status: b.status,
        cloned_from: b.cloned_from || null,
      })),
      subaccounts: [...this.accounts.values()].filter((a) => a.parent).map((a) => ({
        sid: a.sid, auth_token: a.auth_token, friendly_name: a.friendly_name, status: a.status,
      })),
    };
  }
}

module.exports = { State };
