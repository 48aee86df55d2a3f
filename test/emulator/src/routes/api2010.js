'use strict';
// api.twilio.com/2010-04-01: AvailablePhoneNumbers (country list, country,
// searches per type), IncomingPhoneNumbers (buy, list, fetch, update incl.
// transfer to a subaccount, release) and Accounts (subaccounts).

const { TYPES, SEARCH_PATHS, COUNTRIES } = require('../geo');
const { err, notFound, badParam } = require('../errors');
const P = require('../params');
const R = require('../render');
const { compileContains } = require('../contains');
const { addressFits } = require('./addresses');
const { bundleFits } = require('./regulatory');

const A = '^/2010-04-01/Accounts/(?<AccountSid>[^/]+)';
const ACC_SID = /^AC[0-9a-fA-F]{32}$/;

// The account named in the path, which the credentials must be allowed to use.
function pathAccount(ctx) {
  const sid = ctx.params.AccountSid;
  if (!ACC_SID.test(sid) || !ctx.state.canAccess(ctx.principal, sid)) throw err(401, 20003, 'Authenticate');
  return sid;
}

// ---- AvailablePhoneNumbers ------------------------------------------------

function countryInfo(ctx, accountSid, iso) {
  const types = ctx.inv.typesOf(iso);
  const base = `/2010-04-01/Accounts/${accountSid}/AvailablePhoneNumbers/${iso}`;
  const subresource_uris = {};
  for (const t of types) subresource_uris[t] = `${base}/${TYPES[t].path}.json`;
  return { country_code: iso, country: COUNTRIES[iso].name, uri: `${base}.json`, beta: COUNTRIES[iso].beta, subresource_uris };
}

function lookupCountry(ctx, raw) {
  const iso = String(raw).toUpperCase();
  if (!COUNTRIES[iso]) throw notFound(ctx.path);
  return iso;
}

const MILES_PER_RAD = 3958.8;
function miles(aLat, aLon, bLat, bLon) {
  const r = Math.PI / 180;
  const dLat = (bLat - aLat) * r, dLon = (bLon - aLon) * r;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(aLat * r) * Math.cos(bLat * r) * Math.sin(dLon / 2) ** 2;
  return 2 * MILES_PER_RAD * Math.asin(Math.sqrt(h));
}

// The attributes of a number Twilio knows (available or owned), for the
// "given a phone number, search near / within the same X" forms.
function knownNumber(ctx, phone) {
  const owned = ctx.state.byPhone.get(phone);
  return owned ? owned.rec : ctx.inv.byPhone.get(phone) || null;
}
const looksLikeNumber = (v) => /^\+?\d{10,15}$/.test(v);

// Builds the record predicate for a search from its query parameters.
function searchFilter(ctx, iso) {
  const q = ctx.q;
  const tests = [];
  const contains = q('Contains');
  if (contains !== null) {
    let re;
    try {
      re = compileContains(contains);
    } catch (msg) {
      throw badParam(`Invalid Contains: ${contains}. ${msg}`);
    }
    tests.push((r) => re.test(r.digits));
  }
  for (const [name, cap] of [['SmsEnabled', 'sms'], ['MmsEnabled', 'mms'], ['VoiceEnabled', 'voice'], ['FaxEnabled', 'fax']]) {
    const v = P.bool(q(name), name);
    if (v !== undefined) tests.push((r) => r.caps[cap] === v);
  }
  if (P.bool(q('ExcludeAllAddressRequired'), 'ExcludeAllAddressRequired')) tests.push((r) => r.addr === 'none');
  if (P.bool(q('ExcludeLocalAddressRequired'), 'ExcludeLocalAddressRequired')) tests.push((r) => r.addr !== 'local');
  if (P.bool(q('ExcludeForeignAddressRequired'), 'ExcludeForeignAddressRequired')) tests.push((r) => r.addr !== 'foreign');
  if (P.bool(q('Beta'), 'Beta') === false) tests.push((r) => !r.beta);

  // In*: a value, or a phone number whose value is taken.
  const inFilter = (name, field) => {
    let v = q(name);
    if (v === null) return;
    if (looksLikeNumber(v)) {
      const rec = knownNumber(ctx, v.startsWith('+') ? v : `+${v}`);
      v = rec ? rec[field] : null;
      if (v === null) return tests.push(() => false);
    }
    const want = String(v).toLowerCase();
    tests.push((r) => r[field] !== null && String(r[field]).toLowerCase() === want);
  };
  if (q('InRateCenter') !== null && q('InLata') === null) throw badParam('InRateCenter requires InLata to be set as well');
  inFilter('InPostalCode', 'postal');
  inFilter('InRegion', 'region');
  inFilter('InRateCenter', 'rateCenter');
  inFilter('InLata', 'lata');
  inFilter('InLocality', 'locality');

  const near = q('NearNumber'), nearLL = q('NearLatLong');
  let distance = 25;
  if (q('Distance') !== null) {
    if (!/^\d+$/.test(q('Distance')) || Number(q('Distance')) > 500) {
      throw badParam(`Invalid Distance: ${q('Distance')}. Distance must be an integer between 0 and 500`);
    }
    distance = Number(q('Distance'));
  }
  let center = null;
  if (nearLL !== null) {
    const m = /^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*$/.exec(nearLL);
    if (!m || Math.abs(+m[1]) > 90 || Math.abs(+m[2]) > 180) throw badParam(`Invalid NearLatLong: ${nearLL}. Expected "latitude,longitude"`);
    center = [+m[1], +m[2]];
  } else if (near !== null) {
    const rec = knownNumber(ctx, near.startsWith('+') ? near : `+${near}`);
    center = rec && rec.lat !== null ? [rec.lat, rec.lon] : 'none';
  }
  if (center === 'none') tests.push(() => false);
  else if (center) tests.push((r) => r.lat !== null && miles(center[0], center[1], r.lat, r.lon) <= distance);

  return tests;
}

function search(ctx) {
  const accountSid = pathAccount(ctx);
  const iso = lookupCountry(ctx, ctx.params.Country);
  const type = SEARCH_PATHS[ctx.params.Type];
  if (!TYPES[type] || !ctx.inv.typesOf(iso).includes(type)) throw notFound(ctx.path);
  const size = P.pageSize(ctx.q('PageSize'));
  let areaCode = ctx.q('AreaCode');
  if (areaCode !== null) {
    if (!/^[2-9]\d\d$/.test(areaCode)) throw err(400, 21451, `Invalid area code: ${areaCode}`);
    if (iso !== 'US' && iso !== 'CA') areaCode = null; // AreaCode applies to US and Canada only
  }
  const tests = searchFilter(ctx, iso);
  const out = [];
  for (const rec of ctx.inv.list(iso, type, areaCode)) {
    if (rec.taken) continue;
    let ok = true;
    for (const t of tests) if (!t(rec)) { ok = false; break; }
    if (ok) {
      out.push(rec.json);
      if (out.length >= size) break;
    }
  }
  // One page only: Twilio's searches cannot be paged (next_page_uri is null).
  return { body: `{"available_phone_numbers":[${out.join(',')}],"end":${out.length ? out.length - 1 : 0}${searchTail(ctx, accountSid, iso, size)}` };
}

// The paging fields after "end" depend only on the request URL: cached.
const tails = new Map();
function searchTail(ctx, accountSid, iso, size) {
  let tail = tails.get(ctx.url);
  if (tail === undefined) {
    const path = `/2010-04-01/Accounts/${accountSid}/AvailablePhoneNumbers/${iso}/${ctx.params.Type}.json`;
    const env = R.page2010('available_phone_numbers', path, P.filtersOf(ctx.query),
      { page: 0, pageSize: size, start: 0, nextToken: null, prevToken: null, token: null }, []);
    delete env.available_phone_numbers;
    delete env.end;
    tail = `,${JSON.stringify(env).slice(1)}`;
    if (tails.size > 10000) tails.clear();
    tails.set(ctx.url, tail);
  }
  return tail;
}

// ---- IncomingPhoneNumbers -------------------------------------------------

// Form fields that configure a number, with their parsers.
const CONFIG = {
  ApiVersion: ['api_version', (v) => v],
  FriendlyName: ['friendly_name', (v) => {
    if (v.length > 64) throw badParam('FriendlyName must be at most 64 characters long');
    return v;
  }],
  SmsApplicationSid: ['sms_application_sid', (v, n) => (v === '' ? null : P.sid(v, 'AP', n))],
  SmsFallbackMethod: ['sms_fallback_method', P.method],
  SmsFallbackUrl: ['sms_fallback_url', P.url],
  SmsMethod: ['sms_method', P.method],
  SmsUrl: ['sms_url', P.url],
  StatusCallback: ['status_callback', P.url],
  StatusCallbackMethod: ['status_callback_method', P.method],
  VoiceApplicationSid: ['voice_application_sid', (v, n) => (v === '' ? null : P.sid(v, 'AP', n))],
  VoiceCallerIdLookup: ['voice_caller_id_lookup', P.bool],
  VoiceFallbackMethod: ['voice_fallback_method', P.method],
  VoiceFallbackUrl: ['voice_fallback_url', P.url],
  VoiceMethod: ['voice_method', P.method],
  VoiceUrl: ['voice_url', P.url],
  EmergencyStatus: ['emergency_status', (v) => {
    if (v !== 'Active' && v !== 'Inactive') throw badParam(`Invalid EmergencyStatus: ${v}. Must be Active or Inactive`);
    return v;
  }],
  EmergencyAddressSid: ['emergency_address_sid', (v, n) => (v === '' ? null : P.sid(v, 'AD', n))],
  TrunkSid: ['trunk_sid', (v, n) => (v === '' ? null : P.sid(v, 'TK', n))],
  IdentitySid: ['identity_sid', (v, n) => (v === '' ? null : P.sid(v, 'RI', n))],
  AddressSid: ['address_sid', (v, n) => (v === '' ? null : P.sid(v, 'AD', n))],
  BundleSid: ['bundle_sid', (v, n) => (v === '' ? null : P.sid(v, 'BU', n))],
  VoiceReceiveMode: ['voice_receive_mode', (v) => {
    if (v !== 'voice' && v !== 'fax') throw badParam(`Invalid VoiceReceiveMode: ${v}. Must be voice or fax`);
    return v;
  }],
};

function parseConfig(ctx, account) {
  const cfg = {};
  for (const [name, [field, parse]] of Object.entries(CONFIG)) {
    const v = ctx.f(name);
    if (v !== null) cfg[field] = parse(v, name);
  }
  if (cfg.trunk_sid) {
    const t = ctx.state.trunks.get(cfg.trunk_sid);
    if (!t || t.account !== account) throw notFound(`/v1/Trunks/${cfg.trunk_sid}`);
    cfg.voice_application_sid = null; // a trunk replaces the voice application and vice versa
  } else if (cfg.voice_application_sid) {
    cfg.trunk_sid = null;
  }
  if (cfg.emergency_address_sid !== undefined) {
    cfg.emergency_address_status = cfg.emergency_address_sid ? 'registered' : 'unregistered';
  }
  return cfg;
}

// Twilio's regulatory checks at purchase time, with the addresses and
// bundles the account holds: an address that satisfies the number's
// address_requirements (21631), an approved bundle for its country and type
// (21649); a SID given where none is needed must still be the account's.
function regulatory(state, account, rec, cfg) {
  if (rec.addr !== 'none' && !cfg.address_sid) {
    throw err(400, 21631, `Phone Number Requires an Address: ${rec.phone} requires an AddressSid ` +
      `satisfying address requirement '${rec.addr}'`);
  }
  if (cfg.address_sid) {
    const why = addressFits(state, account, cfg.address_sid, rec);
    if (why) throw err(400, 21631, `Phone Number Requires an Address: ${why}`);
  }
  if (rec.bundle && !cfg.bundle_sid) {
    throw err(400, 21649, `Phone Number Requires a Bundle: ${rec.phone} requires a BundleSid compliant ` +
      'with the regulations for its country and number type');
  }
  if (cfg.bundle_sid) {
    const why = bundleFits(state, account, cfg.bundle_sid, rec);
    if (why && (rec.bundle || why.includes('not a bundle'))) throw err(400, 21649, `Phone Number Requires a Bundle: ${why}`);
  }
}

// A number moved to another account needs an address and a bundle of the
// target account (given in the same request) where it needs them at all: 21613.
function transferChecks(state, target, num, cfg) {
  const rec = num.rec;
  const address = cfg.address_sid !== undefined ? cfg.address_sid : num.address_sid;
  const bundle = cfg.bundle_sid !== undefined ? cfg.bundle_sid : num.bundle_sid;
  const addrWhy = rec.addr === 'none' ? null
    : !address ? `${rec.phone} requires an address` : addressFits(state, target, address, rec);
  const bundleWhy = !rec.bundle ? null : !bundle ? `${rec.phone} requires a bundle` : bundleFits(state, target, bundle, rec);
  const why = addrWhy || bundleWhy;
  if (why) {
    throw err(400, 21613, `To purchase or transfer this number you must provide an address and a bundle ` +
      `of account ${target}: ${why}`);
  }
}

function create(ctx) {
  const account = pathAccount(ctx);
  const onlyType = ctx.params.Type ? SEARCH_PATHS[ctx.params.Type] : null;
  const phoneParam = ctx.f('PhoneNumber');
  const areaCode = ctx.f('AreaCode');
  let rec;
  if (phoneParam !== null) {
    const phone = P.phone(phoneParam.replace(/[\s()-]/g, ''));
    rec = ctx.inv.byPhone.get(phone);
    if (!rec || rec.taken || (onlyType && rec.type !== onlyType)) {
      throw err(400, 21422, `PhoneNumber ${phone} is not available`);
    }
  } else if (areaCode !== null) {
    if (onlyType) throw err(400, 21457, 'AreaCode Parameter not Supported on this resource; use PhoneNumber');
    if (!/^[2-9]\d\d$/.test(areaCode)) throw err(400, 21451, `Invalid area code: ${areaCode}`);
    rec = ['US', 'CA'].flatMap((iso) => ctx.inv.list(iso, 'local', areaCode)).find((r) => !r.taken);
    if (!rec) throw err(400, 21452, `No phone numbers found in area code ${areaCode}`);
  } else {
    throw err(400, 21421, 'A PhoneNumber or an AreaCode is required');
  }
  const cfg = parseConfig(ctx, account);
  regulatory(ctx.state, account, rec, cfg);
  const num = ctx.state.own(account, rec, 'twilio', cfg);
  return { status: 201, body: R.incoming(num) };
}

function ownedIn(ctx, account) {
  const num = ctx.state.numbers.get(ctx.params.Sid);
  if (!num || num.account !== account) throw notFound(ctx.path);
  return num;
}

function list(ctx) {
  const account = pathAccount(ctx);
  const onlyType = ctx.params.Type ? SEARCH_PATHS[ctx.params.Type] : null;
  const pg = P.paging(ctx);
  const beta = P.bool(ctx.q('Beta'), 'Beta');
  const friendly = ctx.q('FriendlyName');
  const origin = ctx.q('Origin');
  const phone = ctx.q('PhoneNumber');
  const phoneRe = phone === null ? null
    : new RegExp(phone.replace(/\s/g, '').replace(/[^\d*]/g, (c) => (c === '+' ? '\\+' : '')).replace(/\*/g, '\\d'));
  const items = ctx.state.numbersOf(account).filter((n) => (!onlyType || n.rec.type === onlyType)
    && (beta !== false || !n.rec.beta)
    && (friendly === null || n.friendly_name === friendly)
    && (origin === null || n.origin === origin)
    && (!phoneRe || phoneRe.test(n.phone)));
  const page = R.slicePage(items, pg, (n) => n.phone, ctx.state.sidKey);
  const path = `/2010-04-01/Accounts/${account}/IncomingPhoneNumbers${ctx.params.Type ? `/${ctx.params.Type}` : ''}.json`;
  return { body: R.page2010('incoming_phone_numbers', path, P.filtersOf(ctx.query), page, page.chunk.map(R.incoming)) };
}

function update(ctx) {
  const account = pathAccount(ctx);
  const num = ownedIn(ctx, account);
  const target = ctx.f('AccountSid');
  let newAccount = null;
  if (target !== null && target !== account) {
    // Transfer: only between the main account and its subaccounts.
    if (!ACC_SID.test(target) || !ctx.state.canAccess(ctx.state.main, target)
        || !ctx.state.canAccess(ctx.state.main, account)) {
      throw notFound(`/2010-04-01/Accounts/${target}.json`);
    }
    newAccount = target;
  }
  const cfg = parseConfig(ctx, newAccount || account);
  if (newAccount) transferChecks(ctx.state, newAccount, num, cfg);
  Object.assign(num, cfg);
  if (newAccount) {
    num.account = newAccount;
    if (num.trunk_sid && cfg.trunk_sid === undefined) num.trunk_sid = null; // the trunk stays with the old account
    num.messaging_service_sid = null; // so does its Messaging Service
  }
  num.updated = ctx.state.now();
  return { body: R.incoming(num) };
}

// Twilio: "Before a number can be released any registered emergency address
// will need to be removed" (its support article on releasing numbers). The
// emulator refuses the DELETE while the address is registered or pending;
// EmergencyAddressSid='' unregisters it at once. A Messaging Service does not
// hold a release up: the number leaves its sender pool with it.
const EMERGENCY_HELD = ['registered', 'pending-registration'];

function remove(ctx) {
  const num = ownedIn(ctx, pathAccount(ctx));
  if (num.emergency_address_sid && EMERGENCY_HELD.includes(num.emergency_address_status)) {
    throw badParam(`Phone Number ${num.phone} has an emergency address registered (${num.emergency_address_sid}); `
      + 'remove it (EmergencyAddressSid empty) before releasing the number');
  }
  ctx.state.release(num);
  return { status: 204 };
}

// ---- Accounts ---------------------------------------------------------------

function listAccounts(ctx) {
  const pg = P.paging(ctx);
  const friendly = ctx.q('FriendlyName'), status = ctx.q('Status');
  const items = [...ctx.state.accounts.values()]
    .filter((a) => ctx.state.canAccess(ctx.principal, a.sid))
    .filter((a) => (friendly === null || a.friendly_name === friendly) && (status === null || a.status === status));
  const page = R.slicePage(items, pg, (a) => a.sid, new Map(items.map((a) => [a.sid, a.sid])));
  return { body: R.page2010('accounts', '/2010-04-01/Accounts.json', P.filtersOf(ctx.query), page, page.chunk.map(R.account)) };
}

function createAccount(ctx) {
  if (ctx.principal !== ctx.state.main) throw err(401, 20003, 'Authenticate');
  const name = ctx.f('FriendlyName');
  if (name !== null && name.length > 64) throw badParam('FriendlyName must be at most 64 characters long');
  return { status: 201, body: R.account(ctx.state.createSubaccount(name)) };
}

function fetchAccount(ctx) {
  ctx.params.AccountSid = ctx.params.Sid;
  return { body: R.account(ctx.state.accounts.get(pathAccount(ctx))) };
}

function updateAccount(ctx) {
  ctx.params.AccountSid = ctx.params.Sid;
  const acct = ctx.state.accounts.get(pathAccount(ctx));
  const name = ctx.f('FriendlyName'), status = ctx.f('Status');
  if (status !== null && !['active', 'suspended', 'closed'].includes(status)) {
    throw badParam(`Invalid Status: ${status}. Must be active, suspended or closed`);
  }
  if (name !== null) acct.friendly_name = name;
  if (status !== null) acct.status = status;
  acct.updated = ctx.state.now();
  return { body: R.account(acct) };
}

module.exports = (emu) => {
  const types = Object.keys(SEARCH_PATHS).join('|');
  emu.route('GET', new RegExp(`${A}/AvailablePhoneNumbers\\.json$`), (ctx) => {
    const account = pathAccount(ctx);
    const countries = Object.keys(COUNTRIES).sort().map((iso) => countryInfo(ctx, account, iso));
    const path = `/2010-04-01/Accounts/${account}/AvailablePhoneNumbers.json`;
    const size = P.pageSize(ctx.q('PageSize'));
    return { body: R.page2010('countries', path, {}, { page: 0, pageSize: size, start: 0, token: null }, countries.slice(0, size)) };
  });
  emu.route('GET', new RegExp(`${A}/AvailablePhoneNumbers/(?<Country>[^/]+)\\.json$`), (ctx) => {
    const account = pathAccount(ctx);
    return { body: countryInfo(ctx, account, lookupCountry(ctx, ctx.params.Country)) };
  });
  emu.route('GET', new RegExp(`${A}/AvailablePhoneNumbers/(?<Country>[^/]+)/(?<Type>${types})\\.json$`), search);
  emu.route('GET', new RegExp(`${A}/IncomingPhoneNumbers\\.json$`), list);
  emu.route('POST', new RegExp(`${A}/IncomingPhoneNumbers\\.json$`), create);
  emu.route('GET', new RegExp(`${A}/IncomingPhoneNumbers/(?<Type>Local|TollFree|Mobile)\\.json$`), list);
  emu.route('POST', new RegExp(`${A}/IncomingPhoneNumbers/(?<Type>Local|TollFree|Mobile)\\.json$`), create);
  emu.route('GET', new RegExp(`${A}/IncomingPhoneNumbers/(?<Sid>PN[^/.]+)\\.json$`), (ctx) => ({
    body: R.incoming(ownedIn(ctx, pathAccount(ctx))),
  }));
  emu.route('POST', new RegExp(`${A}/IncomingPhoneNumbers/(?<Sid>PN[^/.]+)\\.json$`), update);
  emu.route('DELETE', new RegExp(`${A}/IncomingPhoneNumbers/(?<Sid>PN[^/.]+)\\.json$`), remove);
  emu.route('GET', /^\/2010-04-01\/Accounts\.json$/, listAccounts);
  emu.route('POST', /^\/2010-04-01\/Accounts\.json$/, createAccount);
  emu.route('GET', /^\/2010-04-01\/Accounts\/(?<Sid>[^/]+)\.json$/, fetchAccount);
  emu.route('POST', /^\/2010-04-01\/Accounts\/(?<Sid>[^/]+)\.json$/, updateAccount);
};

module.exports.miles = miles;
