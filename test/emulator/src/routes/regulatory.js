'use strict';
// numbers.twilio.com/v2/RegulatoryCompliance: Regulations (what a country,
// number type and end-user type require), Bundles (create, list with
// filters, fetch, the user's one move: submit for review, delete), their
// Evaluations and Bundle Clones into another account. Twilio's staff review bundles; the
// control POST /_emulator/bundles/{Sid} stands in for them (moveBundle
// below), and POST /_emulator/bundles creates one in any status. The
// purchase and transfer checks that use bundles live in api2010.js
// (bundleFits below).

const crypto = require('crypto');
const { err, notFound, badParam } = require('../errors');
const P = require('../params');
const R = require('../render');

const STATUSES = ['draft', 'pending-review', 'in-review', 'twilio-rejected', 'twilio-approved', 'provisionally-approved'];
const APPROVED = ['twilio-approved', 'provisionally-approved'];
const END_USER_TYPES = ['individual', 'business'];
const COUNTRY_NAMES = { DE: 'Germany', GB: 'United Kingdom', AU: 'Australia' };
// number types as Regulations spell them -> the emulator's keys
const NUMBER_TYPES = { local: 'local', mobile: 'mobile', 'toll free': 'toll_free', 'toll-free': 'toll_free', tollfree: 'toll_free' };
const TYPE_NAMES = { local: 'local', mobile: 'mobile', toll_free: 'toll free' };
const BASE = 'https://numbers.twilio.com/v2/RegulatoryCompliance';

const field = (machine, friendly, description) => ({ machine_name: machine, friendly_name: friendly, description });
const END_USERS = {
  individual: { name: 'Individual', type: 'individual', requirement_name: 'individual_info',
    detailed_fields: [field('first_name', 'First Name', 'First name of the Individual'),
      field('last_name', 'Last Name', 'Last name of the Individual')] },
  business: { name: 'Business', type: 'business', requirement_name: 'business_info',
    detailed_fields: [field('business_name', 'Business Name', 'Name of the Business'),
      field('business_registration_number', 'Business Registration Number', 'Registration number of the Business')] },
};
const doc = (name, type, fields) => ({ name, type, url: `${BASE}/DocumentTypes/${type}`, fields: fields.map((f) => f[0]),
  detailed_fields: fields.map(([m, fr, d]) => field(m, fr, d)) });
const ADDRESS_DOC = doc('Address Validation', 'address', [['address_sids', 'Address sid(s)', 'Address sid of the end user']]);
const proofOfAddress = (rule) => ({ name: 'Address', type: 'document', requirement_name: 'proof_of_address',
  description: `The physical location of the individual or business. ${rule}`, accepted_documents: [ADDRESS_DOC] });
const IDENTITY = {
  individual: { name: 'Proof of Identity', type: 'document', requirement_name: 'proof_of_identity',
    description: 'A government-issued photo identity document of the individual.',
    accepted_documents: [doc('Passport', 'passport', [['first_name', 'First Name', 'First name on the document'],
      ['last_name', 'Last Name', 'Last name on the document']]),
    doc('Government-issued ID', 'government_issued_document', [['first_name', 'First Name', 'First name on the document'],
      ['last_name', 'Last Name', 'Last name on the document']])] },
  business: { name: 'Business Registration', type: 'document', requirement_name: 'business_registration',
    description: 'An excerpt from the commercial register showing the business name and registration number.',
    accepted_documents: [doc('Excerpt from the commercial register', 'commercial_registrar_excerpt',
      [['business_name', 'Business Name', 'Name on the excerpt'],
        ['business_registration_number', 'Business Registration Number', 'Number on the excerpt']])] },
};

// What each country and number type of the inventory requires: an address
// rule (the inventory's address_requirements) and whether a bundle with an
// end user and identity documents is needed (the inventory's bundle flag).
// Countries and types not listed have no Regulation (US, CA, GB mobile, AU
// toll-free): nothing is required.
const RULES = [
  { iso: 'DE', type: 'local', bundle: true, address: 'Must be within the locality covered by the phone number\'s prefix; a PO Box is not acceptable.' },
  { iso: 'DE', type: 'toll_free', bundle: true, address: 'Anywhere in the world.' },
  { iso: 'GB', type: 'local', bundle: false, address: 'Anywhere in the world, or in the United Kingdom where the number requires a local address.' },
  { iso: 'AU', type: 'local', bundle: false, address: 'Must be within Australia.' },
  { iso: 'AU', type: 'mobile', bundle: true, address: 'Anywhere in the world.' },
];

const regulationSid = (iso, type, eut) => `RN${crypto.createHash('md5').update(`regulation:${iso}:${type}:${eut}`).digest('hex')}`;

// The fixed set of Regulations, by SID, in a stable order.
const REGULATIONS = new Map();
for (const r of RULES) {
  for (const eut of END_USER_TYPES) {
    const sid = regulationSid(r.iso, r.type, eut);
    const supporting = [[proofOfAddress(r.address)]];
    if (r.bundle) supporting.push([IDENTITY[eut]]);
    const endUser = { ...END_USERS[eut], url: `${BASE}/EndUserTypes/${eut}`, fields: END_USERS[eut].detailed_fields.map((f) => f.machine_name) };
    REGULATIONS.set(sid, {
      sid, iso: r.iso, type: r.type, end_user_type: eut, bundle: r.bundle, key: sid,
      friendly_name: `${COUNTRY_NAMES[r.iso]}: ${TYPE_NAMES[r.type].replace(/^./, (c) => c.toUpperCase())} - ${END_USERS[eut].name}`,
      requirements: { end_user: r.bundle ? [endUser] : [], supporting_document: supporting },
    });
  }
}

function renderRegulation(r, base) {
  return {
    sid: r.sid, friendly_name: r.friendly_name, iso_country: r.iso, number_type: TYPE_NAMES[r.type],
    end_user_type: r.end_user_type, requirements: r.requirements,
    url: `${base}/v2/RegulatoryCompliance/Regulations/${r.sid}`,
  };
}

function renderBundle(b, base) {
  const url = `${base}/v2/RegulatoryCompliance/Bundles/${b.sid}`;
  return {
    sid: b.sid, account_sid: b.account, regulation_sid: b.regulation_sid, friendly_name: b.friendly_name,
    status: b.status, valid_until: b.valid_until ? R.iso8601(b.valid_until) : null, email: b.email,
    status_callback: b.status_callback, date_created: R.iso8601(b.created), date_updated: R.iso8601(b.updated), url,
    links: { evaluations: `${url}/Evaluations`, item_assignments: `${url}/ItemAssignments`, bundle_copies: `${url}/Copies` },
  };
}

function renderClone(b, base) {
  return {
    bundle_sid: b.sid, account_sid: b.account, regulation_sid: b.regulation_sid, friendly_name: b.friendly_name,
    status: b.status, valid_until: b.valid_until ? R.iso8601(b.valid_until) : null, email: b.email,
    status_callback: b.status_callback, date_created: R.iso8601(b.created), date_updated: R.iso8601(b.updated),
    url: `${base}/v2/RegulatoryCompliance/Bundles/${b.sid}/Clones`,
  };
}

function numberType(value, name) {
  if (value === null || value === undefined) return undefined;
  const t = NUMBER_TYPES[String(value).toLowerCase()];
  if (!t) throw badParam(`Invalid ${name}: ${value}. Must be local, mobile or toll free`);
  return t;
}

function endUserType(value, name) {
  if (value === null || value === undefined) return undefined;
  if (!END_USER_TYPES.includes(value)) throw badParam(`Invalid ${name}: ${value}. Must be individual or business`);
  return value;
}

function listRegulations(ctx) {
  const iso = ctx.q('IsoCountry') === null ? null : ctx.q('IsoCountry').toUpperCase();
  const type = numberType(ctx.q('NumberType'), 'NumberType');
  const eut = endUserType(ctx.q('EndUserType'), 'EndUserType');
  P.bool(ctx.q('IncludeConstraints'), 'IncludeConstraints');
  const items = [...REGULATIONS.values()].filter((r) => (iso === null || r.iso === iso)
    && (type === undefined || r.type === type) && (eut === undefined || r.end_user_type === eut));
  const keys = new Map(items.map((r) => [r.sid, r.sid]));
  const page = R.slicePage(items, P.paging(ctx), (r) => r.key, keys);
  return { body: R.pageMeta('results', ctx.base, '/v2/RegulatoryCompliance/Regulations', P.filtersOf(ctx.query), page,
    page.chunk.map((r) => renderRegulation(r, ctx.base))) };
}

function fetchRegulation(ctx) {
  const r = REGULATIONS.get(ctx.params.Sid);
  if (!r) throw notFound(ctx.path);
  return { body: renderRegulation(r, ctx.base) };
}

function bundleOf(ctx, sid) {
  const b = ctx.state.bundles.get(sid);
  if (!b || !ctx.state.canAccess(ctx.principal, b.account)) throw notFound(ctx.path);
  return b;
}

// Creates a bundle in an account (Twilio's create route and the control).
function newBundle(state, account, regulation, fields) {
  const now = state.now();
  const b = {
    sid: state.newSid('BU'), account, regulation_sid: regulation.sid, friendly_name: fields.friendly_name,
    email: fields.email, status_callback: fields.status_callback || null, status: fields.status || 'draft',
    valid_until: null, created: now, updated: now, failure_reason: null,
  };
  if (APPROVED.includes(b.status)) b.valid_until = new Date(now.getTime() + 365 * 86400000);
  state.bundles.set(b.sid, b);
  state.sidKey.set(b.sid, String(state.counters.BU).padStart(8, '0'));
  b.key = state.sidKey.get(b.sid);
  return b;
}

// The regulation named by RegulationSid, or by IsoCountry + NumberType + EndUserType.
function regulationFor(get) {
  const sid = get('RegulationSid');
  if (sid !== null && sid !== undefined) {
    const r = REGULATIONS.get(sid);
    if (!r) throw badParam(`Invalid RegulationSid: ${sid}`);
    return r;
  }
  const iso = get('IsoCountry'), type = numberType(get('NumberType'), 'NumberType'), eut = endUserType(get('EndUserType'), 'EndUserType');
  if (!iso || !type || !eut) throw badParam('Give RegulationSid, or IsoCountry, NumberType and EndUserType');
  const r = REGULATIONS.get(regulationSid(String(iso).toUpperCase(), type, eut));
  if (!r) throw badParam(`No regulation requires a bundle for ${iso} ${TYPE_NAMES[type]} numbers (${eut})`);
  return r;
}

function createBundle(ctx) {
  for (const name of ['FriendlyName', 'Email']) {
    if (ctx.f(name) === null || ctx.f(name) === '') throw badParam(`Missing required parameter ${name} in the post body`);
  }
  if (ctx.f('FriendlyName').length > 64) throw badParam('FriendlyName must be at most 64 characters long');
  const regulation = regulationFor(ctx.f);
  const b = newBundle(ctx.state, ctx.principal.sid, regulation, {
    friendly_name: ctx.f('FriendlyName'), email: ctx.f('Email'),
    status_callback: P.url(ctx.f('StatusCallback'), 'StatusCallback'),
  });
  return { status: 201, body: renderBundle(b, ctx.base) };
}

function listBundles(ctx) {
  const q = ctx.q;
  const status = q('Status');
  if (status !== null && !STATUSES.includes(status)) throw badParam(`Invalid Status: ${status}`);
  const type = numberType(q('NumberType'), 'NumberType');
  const eut = endUserType(q('EndUserType'), 'EndUserType');
  const iso = q('IsoCountry') === null ? null : q('IsoCountry').toUpperCase();
  const sids = q('BundleSids') === null ? null : q('BundleSids').split(',');
  const items = [...ctx.state.bundles.values()].filter((b) => {
    const r = REGULATIONS.get(b.regulation_sid);
    return b.account === ctx.principal.sid
      && (status === null || b.status === status)
      && (q('FriendlyName') === null || b.friendly_name === q('FriendlyName'))
      && (q('RegulationSid') === null || b.regulation_sid === q('RegulationSid'))
      && (iso === null || r.iso === iso) && (type === undefined || r.type === type)
      && (eut === undefined || r.end_user_type === eut) && (sids === null || sids.includes(b.sid));
  });
  const page = R.slicePage(items, P.paging(ctx), (b) => b.key, ctx.state.sidKey);
  return { body: R.pageMeta('results', ctx.base, '/v2/RegulatoryCompliance/Bundles', P.filtersOf(ctx.query), page,
    page.chunk.map((b) => renderBundle(b, ctx.base))) };
}

// The user's move: submit a draft (or rejected) bundle for review; and its
// friendly name, e-mail and status callback.
function updateBundle(ctx) {
  const b = bundleOf(ctx, ctx.params.Sid);
  const status = ctx.f('Status');
  if (status !== null) {
    if (status !== 'pending-review') throw badParam(`Invalid Status: ${status}. A bundle can only be submitted for review (pending-review)`);
    if (!['draft', 'twilio-rejected'].includes(b.status)) throw badParam(`Bundle ${b.sid} is ${b.status} and cannot be submitted for review`);
  }
  const friendly = ctx.f('FriendlyName');
  if (friendly !== null && friendly.length > 64) throw badParam('FriendlyName must be at most 64 characters long');
  const callback = P.url(ctx.f('StatusCallback'), 'StatusCallback');
  if (friendly !== null) b.friendly_name = friendly;
  if (ctx.f('Email') !== null) b.email = ctx.f('Email');
  if (callback !== undefined) b.status_callback = callback;
  if (status !== null) b.status = status;
  b.updated = ctx.state.now();
  return { body: renderBundle(b, ctx.base) };
}

function deleteBundle(ctx) {
  const b = bundleOf(ctx, ctx.params.Sid);
  const users = [...ctx.state.numbers.values()].filter((n) => n.bundle_sid === b.sid);
  if (users.length) throw badParam(`Bundle ${b.sid} cannot be deleted: ${users.length} phone number(s) use it`);
  ctx.state.bundles.delete(b.sid);
  return { status: 204 };
}

// A copy of an approved bundle in another account of the same main account.
function cloneBundle(ctx) {
  const b = bundleOf(ctx, ctx.params.BundleSid);
  const target = ctx.f('TargetAccountSid');
  if (target === null || target === '') throw badParam('Missing required parameter TargetAccountSid in the post body');
  P.sid(target, 'AC', 'TargetAccountSid');
  if (!ctx.state.canAccess(ctx.state.main, target)) throw notFound(`/2010-04-01/Accounts/${target}.json`);
  if (!APPROVED.includes(b.status)) throw badParam(`Bundle ${b.sid} is ${b.status}; only an approved bundle can be cloned`);
  const draft = P.bool(ctx.f('MoveToDraft'), 'MoveToDraft') === true;
  const friendly = ctx.f('FriendlyName');
  if (friendly !== null && friendly.length > 64) throw badParam('FriendlyName must be at most 64 characters long');
  const c = newBundle(ctx.state, target, REGULATIONS.get(b.regulation_sid), {
    friendly_name: friendly || b.friendly_name, email: b.email, status_callback: b.status_callback,
    status: draft ? 'draft' : b.status,
  });
  c.cloned_from = b.sid;
  return { status: 201, body: renderClone(c, ctx.base) };
}

// An evaluation of a bundle against its regulation. The emulator keeps no
// item assignments: a draft or rejected bundle evaluates noncompliant with
// every requirement missing, any other compliant with every one met.
function evaluate(ctx) {
  const b = bundleOf(ctx, ctx.params.BundleSid);
  const r = REGULATIONS.get(b.regulation_sid);
  const ok = !['draft', 'twilio-rejected'].includes(b.status);
  const results = [];
  for (const e of r.requirements.end_user) {
    results.push({ friendly_name: e.name, object_type: e.type, passed: ok, requirement_name: e.requirement_name,
      requirement_friendly_name: e.name, failure_reason: ok ? null : `A ${e.name} End-User is missing. Please add one to the regulatory bundle.`,
      error_code: ok ? null : 22214, valid: ok ? e.detailed_fields.map((f) => ({ friendly_name: f.friendly_name, object_field: f.machine_name })) : [],
      invalid: ok ? [] : e.detailed_fields.map((f) => ({ friendly_name: f.friendly_name, object_field: f.machine_name,
        failure_reason: `The ${f.friendly_name} is missing.`, error_code: 22215 })) });
  }
  for (const d of r.requirements.supporting_document.flat()) {
    results.push({ friendly_name: d.name, object_type: d.accepted_documents[0].type, passed: ok,
      requirement_name: d.requirement_name, requirement_friendly_name: d.name,
      failure_reason: ok ? null : `A ${d.name} is missing. Please add one to the regulatory bundle.`,
      error_code: ok ? null : 22216, valid: [], invalid: [] });
  }
  const ev = { sid: ctx.state.newSid('EL'), account: b.account, regulation_sid: b.regulation_sid, bundle_sid: b.sid,
    status: ok ? 'compliant' : 'noncompliant', results, created: ctx.state.now() };
  (b.evaluations = b.evaluations || []).push(ev);
  ctx.state.sidKey.set(ev.sid, String(ctx.state.counters.EL).padStart(8, '0'));
  ev.key = ctx.state.sidKey.get(ev.sid);
  return { status: 201, body: renderEvaluation(ev, ctx.base) };
}

function renderEvaluation(ev, base) {
  return {
    sid: ev.sid, account_sid: ev.account, regulation_sid: ev.regulation_sid, bundle_sid: ev.bundle_sid,
    status: ev.status, results: ev.results, date_created: R.iso8601(ev.created),
    url: `${base}/v2/RegulatoryCompliance/Bundles/${ev.bundle_sid}/Evaluations/${ev.sid}`,
  };
}

function listEvaluations(ctx) {
  const b = bundleOf(ctx, ctx.params.BundleSid);
  const page = R.slicePage(b.evaluations || [], P.paging(ctx), (e) => e.key, ctx.state.sidKey);
  return { body: R.pageMeta('results', ctx.base, `/v2/RegulatoryCompliance/Bundles/${b.sid}/Evaluations`,
    P.filtersOf(ctx.query), page, page.chunk.map((e) => renderEvaluation(e, ctx.base))) };
}

function fetchEvaluation(ctx) {
  const b = bundleOf(ctx, ctx.params.BundleSid);
  const ev = (b.evaluations || []).find((e) => e.sid === ctx.params.Sid);
  if (!ev) throw notFound(ctx.path);
  return { body: renderEvaluation(ev, ctx.base) };
}

// Moves a bundle as Twilio's reviewers would (the control).
function moveBundle(state, b, status, failureReason) {
  if (!STATUSES.includes(status)) throw badParam(`status must be one of ${STATUSES.join(', ')}`);
  b.status = status;
  b.updated = state.now();
  b.failure_reason = status === 'twilio-rejected' ? (failureReason || 'The supporting document is illegible') : null;
  b.valid_until = APPROVED.includes(status) ? new Date(b.updated.getTime() + 365 * 86400000) : null;
  return b;
}

// Does the account's bundle `sid` cover a number? null when it does, else why not.
function bundleFits(state, account, sid, rec) {
  const b = state.bundles.get(sid);
  if (!b || b.account !== account) return `Bundle ${sid} is not a bundle of account ${account}`;
  const r = REGULATIONS.get(b.regulation_sid);
  if (r.iso !== rec.iso || r.type !== rec.type) {
    return `Bundle ${sid} is for ${r.iso} ${TYPE_NAMES[r.type]} numbers, not ${rec.iso} ${TYPE_NAMES[rec.type] || rec.type}`;
  }
  if (!APPROVED.includes(b.status)) return `Bundle ${sid} is ${b.status}; it must be twilio-approved`;
  return null;
}

module.exports = (emu) => {
  const RC = '^/v2/RegulatoryCompliance';
  emu.route('GET', new RegExp(`${RC}/Regulations$`), listRegulations);
  emu.route('GET', new RegExp(`${RC}/Regulations/(?<Sid>RN[^/]*)$`), fetchRegulation);
  emu.route('POST', new RegExp(`${RC}/Bundles$`), createBundle);
  emu.route('GET', new RegExp(`${RC}/Bundles$`), listBundles);
  emu.route('GET', new RegExp(`${RC}/Bundles/(?<Sid>BU[^/]*)$`), (ctx) => ({ body: renderBundle(bundleOf(ctx, ctx.params.Sid), ctx.base) }));
  emu.route('POST', new RegExp(`${RC}/Bundles/(?<Sid>BU[^/]*)$`), updateBundle);
  emu.route('DELETE', new RegExp(`${RC}/Bundles/(?<Sid>BU[^/]*)$`), deleteBundle);
  emu.route('POST', new RegExp(`${RC}/Bundles/(?<BundleSid>BU[^/]*)/Clones$`), cloneBundle);
  emu.route('POST', new RegExp(`${RC}/Bundles/(?<BundleSid>BU[^/]*)/Evaluations$`), evaluate);
  emu.route('GET', new RegExp(`${RC}/Bundles/(?<BundleSid>BU[^/]*)/Evaluations$`), listEvaluations);
  emu.route('GET', new RegExp(`${RC}/Bundles/(?<BundleSid>BU[^/]*)/Evaluations/(?<Sid>EL[^/]*)$`), fetchEvaluation);

  // Controls: create a bundle in any account and status; move one.
  emu.control('POST', /^\/_emulator\/bundles$/, ({ state, json }) => {
    const account = json.account_sid || state.main.sid;
    if (!state.canAccess(state.main, account)) throw notFound(`/2010-04-01/Accounts/${account}.json`);
    const regulation = regulationFor((k) => ({ RegulationSid: json.regulation_sid, IsoCountry: json.iso_country,
      NumberType: json.number_type, EndUserType: json.end_user_type || 'business' })[k]);
    const status = json.status || 'twilio-approved';
    if (!STATUSES.includes(status)) throw badParam(`status must be one of ${STATUSES.join(', ')}`);
    const b = newBundle(state, account, regulation, { friendly_name: json.friendly_name || 'Emulated bundle',
      email: json.email || 'compliance@example.com', status });
    return { status: 201, body: renderBundle(b, 'https://numbers.twilio.com') };
  });
  emu.control('POST', /^\/_emulator\/bundles\/(?<Sid>[^/]+)$/, ({ state, json, params }) => {
    const b = state.bundles.get(params.Sid);
    if (!b) throw notFound(`/v2/RegulatoryCompliance/Bundles/${params.Sid}`);
    moveBundle(state, b, json.status, json.failure_reason);
    return { body: { sid: b.sid, status: b.status, failure_reason: b.failure_reason } };
  });
};
Object.assign(module.exports, {
  STATUSES, REGULATIONS, regulationFor, newBundle, moveBundle, bundleFits, renderBundle,
});
