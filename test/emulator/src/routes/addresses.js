'use strict';
// api.twilio.com/2010-04-01 Addresses: create (validated against the
// country's postal code format: 21628), list with filters, fetch, update,
// delete (refused while numbers depend on the address), and the address's
// DependentPhoneNumbers. Addresses belong to the account in the path; a
// number bought or moved with an AddressSid depends on it. The purchase and
// transfer checks that use addresses live in api2010.js (addressFits below).

const { err, notFound, badParam } = require('../errors');
const P = require('../params');
const R = require('../render');

const A = '^/2010-04-01/Accounts/(?<AccountSid>[^/]+)';
const ACC_SID = /^AC[0-9a-fA-F]{32}$/;

// Postal code formats the emulator validates (others: any non-empty code).
const POSTAL = {
  US: /^\d{5}(-\d{4})?$/,
  CA: /^[A-Za-z]\d[A-Za-z] ?\d[A-Za-z]\d$/,
  GB: /^[A-Za-z]{1,2}\d[A-Za-z\d]? ?\d[A-Za-z]{2}$/,
  DE: /^\d{5}$/,
  AU: /^\d{4}$/,
  FR: /^\d{5}$/,
  ES: /^\d{5}$/,
  NL: /^\d{4} ?[A-Za-z]{2}$/,
  IE: /^[A-Za-z\d]{3} ?[A-Za-z\d]{4}$/,
  SE: /^\d{3} ?\d{2}$/,
};

function pathAccount(ctx) {
  const sid = ctx.params.AccountSid;
  if (!ACC_SID.test(sid) || !ctx.state.canAccess(ctx.principal, sid)) throw err(401, 20003, 'Authenticate');
  return sid;
}

function addressIn(ctx, account, sid) {
  const a = ctx.state.addresses.get(sid);
  if (!a || a.account !== account) throw notFound(ctx.path);
  return a;
}

function uri(a) {
  return `/2010-04-01/Accounts/${a.account}/Addresses/${a.sid}.json`;
}

// Address: every field of the spec's schema.
function render(a) {
  return {
    account_sid: a.account,
    city: a.city,
    customer_name: a.customer_name,
    date_created: R.rfc2822(a.created),
    date_updated: R.rfc2822(a.updated),
    friendly_name: a.friendly_name,
    iso_country: a.iso_country,
    postal_code: a.postal_code,
    region: a.region,
    sid: a.sid,
    street: a.street,
    uri: uri(a),
    emergency_enabled: a.emergency_enabled,
    validated: a.validated,
    verified: a.verified,
    street_secondary: a.street_secondary,
  };
}

// DependentPhoneNumber: the number's fields as the spec lists them.
function renderDependent(n) {
  const c = n.rec.caps;
  return {
    sid: n.sid,
    account_sid: n.account,
    friendly_name: n.friendly_name,
    phone_number: n.phone,
    voice_url: n.voice_url,
    voice_method: n.voice_method,
    voice_fallback_method: n.voice_fallback_method,
    voice_fallback_url: n.voice_fallback_url,
    voice_caller_id_lookup: n.voice_caller_id_lookup,
    date_created: R.rfc2822(n.created),
    date_updated: R.rfc2822(n.updated),
    sms_fallback_method: n.sms_fallback_method,
    sms_fallback_url: n.sms_fallback_url,
    sms_method: n.sms_method,
    sms_url: n.sms_url,
    address_requirements: n.rec.addr,
    capabilities: { voice: c.voice, sms: c.sms, mms: c.mms, fax: c.fax },
    status_callback: n.status_callback,
    status_callback_method: n.status_callback_method,
    api_version: n.api_version,
    sms_application_sid: n.sms_application_sid,
    voice_application_sid: n.voice_application_sid,
    trunk_sid: n.trunk_sid,
    emergency_status: n.emergency_status,
    emergency_address_sid: n.emergency_address_sid,
    uri: R.incomingUri(n),
  };
}

// The numbers whose purchase or transfer named this address.
function dependents(state, a) {
  return state.numbersOf(a.account).filter((n) => n.address_sid === a.sid);
}

function text(ctx, name, max) {
  const v = ctx.f(name);
  if (v === null) return undefined;
  if (v.length > max) throw badParam(`${name} must be at most ${max} characters long`);
  return v;
}

// Twilio validates the address as it is created or changed (21628).
function validate(a) {
  for (const f of ['customer_name', 'street', 'city', 'region', 'postal_code']) {
    if (!a[f] || !a[f].trim()) throw err(400, 21628, `Address Validation Error: ${f} is empty`);
  }
  const re = POSTAL[a.iso_country];
  if (re && !re.test(a.postal_code.trim())) {
    throw err(400, 21628, `Address Validation Error: ${a.postal_code} is not a postal code of ${a.iso_country}`);
  }
  if (!/\d/.test(a.street)) throw err(400, 21628, `Address Validation Error: the street "${a.street}" has no house number`);
}

const FIELDS = [['CustomerName', 'customer_name', 255], ['Street', 'street', 255], ['City', 'city', 255],
  ['Region', 'region', 255], ['PostalCode', 'postal_code', 32], ['FriendlyName', 'friendly_name', 64],
  ['StreetSecondary', 'street_secondary', 255]];

function create(ctx) {
  const account = pathAccount(ctx);
  for (const name of ['CustomerName', 'Street', 'City', 'Region', 'PostalCode', 'IsoCountry']) {
    if (ctx.f(name) === null) throw badParam(`Missing required parameter ${name} in the post body`);
  }
  const iso = ctx.f('IsoCountry').toUpperCase();
  if (!/^[A-Z]{2}$/.test(iso)) throw badParam(`Invalid IsoCountry: ${ctx.f('IsoCountry')}. Must be an ISO 3166-1 alpha-2 code`);
  const s = ctx.state;
  const now = s.now();
  const a = {
    sid: null, account, iso_country: iso, friendly_name: null, street_secondary: null,
    emergency_enabled: P.bool(ctx.f('EmergencyEnabled'), 'EmergencyEnabled') === true,
    validated: true, verified: false, created: now, updated: now,
  };
  for (const [name, field, max] of FIELDS) {
    const v = text(ctx, name, max);
    if (v !== undefined) a[field] = v;
  }
  P.bool(ctx.f('AutoCorrectAddress'), 'AutoCorrectAddress');
  validate(a);
  a.sid = s.newSid('AD');
  s.addresses.set(a.sid, a);
  s.sidKey.set(a.sid, String(s.counters.AD).padStart(8, '0'));
  a.key = s.sidKey.get(a.sid);
  return { status: 201, body: render(a) };
}

function list(ctx) {
  const account = pathAccount(ctx);
  const q = ctx.q;
  const emergency = P.bool(q('EmergencyEnabled'), 'EmergencyEnabled');
  const items = [...ctx.state.addresses.values()].filter((a) => a.account === account
    && (q('CustomerName') === null || a.customer_name === q('CustomerName'))
    && (q('FriendlyName') === null || a.friendly_name === q('FriendlyName'))
    && (q('IsoCountry') === null || a.iso_country === q('IsoCountry').toUpperCase())
    && (emergency === undefined || a.emergency_enabled === emergency));
  const page = R.slicePage(items, P.paging(ctx), (a) => a.key, ctx.state.sidKey);
  return { body: R.page2010('addresses', `/2010-04-01/Accounts/${account}/Addresses.json`, P.filtersOf(ctx.query), page, page.chunk.map(render)) };
}

function update(ctx) {
  const account = pathAccount(ctx);
  const a = addressIn(ctx, account, ctx.params.Sid);
  const next = { ...a };
  for (const [name, field, max] of FIELDS) {
    const v = text(ctx, name, max);
    if (v !== undefined) next[field] = v;
  }
  const emergency = P.bool(ctx.f('EmergencyEnabled'), 'EmergencyEnabled');
  if (emergency !== undefined) next.emergency_enabled = emergency;
  P.bool(ctx.f('AutoCorrectAddress'), 'AutoCorrectAddress');
  validate(next);
  Object.assign(a, next, { updated: ctx.state.now() });
  return { body: render(a) };
}

function remove(ctx) {
  const account = pathAccount(ctx);
  const a = addressIn(ctx, account, ctx.params.Sid);
  const deps = dependents(ctx.state, a);
  if (deps.length) {
    throw badParam(`Address ${a.sid} cannot be deleted: ${deps.length} phone number(s) depend on it (${deps.map((n) => n.phone).join(', ')})`);
  }
  ctx.state.addresses.delete(a.sid);
  return { status: 204 };
}

function listDependents(ctx) {
  const account = pathAccount(ctx);
  const a = addressIn(ctx, account, ctx.params.AddressSid);
  const items = dependents(ctx.state, a);
  const page = R.slicePage(items, P.paging(ctx), (n) => n.phone, ctx.state.sidKey);
  const path = `/2010-04-01/Accounts/${account}/Addresses/${a.sid}/DependentPhoneNumbers.json`;
  return { body: R.page2010('dependent_phone_numbers', path, P.filtersOf(ctx.query), page, page.chunk.map(renderDependent)) };
}

// Does the account's address `sid` satisfy a number's address requirement?
// null when it does, else why not (the purchase's and transfer's check).
function addressFits(state, account, sid, rec) {
  const a = state.addresses.get(sid);
  if (!a || a.account !== account) return `Address ${sid} is not an address of account ${account}`;
  if (rec.addr === 'local' && a.iso_country !== rec.iso) {
    return `${rec.phone} requires a local address in ${rec.iso}; address ${sid} is in ${a.iso_country}`;
  }
  if (rec.addr === 'foreign' && a.iso_country === rec.iso) {
    return `${rec.phone} requires an address outside ${rec.iso}; address ${sid} is in ${a.iso_country}`;
  }
  return null;
}

module.exports = (emu) => {
  emu.route('GET', new RegExp(`${A}/Addresses\\.json$`), list);
  emu.route('POST', new RegExp(`${A}/Addresses\\.json$`), create);
  emu.route('GET', new RegExp(`${A}/Addresses/(?<Sid>AD[^/.]+)\\.json$`), (ctx) => ({
    body: render(addressIn(ctx, pathAccount(ctx), ctx.params.Sid)),
  }));
  emu.route('POST', new RegExp(`${A}/Addresses/(?<Sid>AD[^/.]+)\\.json$`), update);
  emu.route('DELETE', new RegExp(`${A}/Addresses/(?<Sid>AD[^/.]+)\\.json$`), remove);
  emu.route('GET', new RegExp(`${A}/Addresses/(?<AddressSid>AD[^/.]+)/DependentPhoneNumbers\\.json$`), listDependents);

  // Control: set what Twilio's own checks decided ({validated, verified}).
  emu.control('POST', /^\/_emulator\/addresses\/(?<Sid>[^/]+)$/, ({ state, json, params }) => {
    const a = state.addresses.get(params.Sid);
    if (!a) throw notFound(`/2010-04-01/Accounts/-/Addresses/${params.Sid}.json`);
    for (const k of ['validated', 'verified']) {
      if (json[k] === undefined) continue;
      if (typeof json[k] !== 'boolean') throw badParam(`${k} must be true or false`);
      a[k] = json[k];
    }
    a.updated = state.now();
    return { body: render(a) };
  });
};
module.exports.addressFits = addressFits;
module.exports.render = render;
