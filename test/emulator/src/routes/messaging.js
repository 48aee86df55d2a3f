'use strict';
// messaging.twilio.com/v1/Services (create, list, fetch, update, delete) and
// /v1/Services/{ServiceSid}/PhoneNumbers (add, list, fetch, remove): a
// Messaging Service and its sender pool, with Twilio's rules for adding a
// number — it must be the service account's number (404 otherwise), able to
// send SMS (21715), in no other service (21712), not already in this one
// (21710), and the pool holds at most 400 numbers (21714). The membership
// is kept on the IncomingPhoneNumber (messaging_service_sid, not on the
// wire): releasing a number drops it from its pool (Twilio does not refuse
// the release), moving it to another account drops it too (the service stays
// with the old account), deleting a service empties its pool.
//
// Also the control POST /_emulator/numbers/{PN} ({"emergency_address_status":
// …}): Twilio registers an emergency address asynchronously, and a
// registration can fail; the control moves a number's status as Twilio would.

const { err, notFound, badParam } = require('../errors');
const P = require('../params');
const R = require('../render');

const POOL_LIMIT = 400;

const BOOLS = {
  StickySender: 'sticky_sender', MmsConverter: 'mms_converter', SmartEncoding: 'smart_encoding',
  FallbackToLongCode: 'fallback_to_long_code', AreaCodeGeomatch: 'area_code_geomatch',
  SynchronousValidation: 'synchronous_validation', UseInboundWebhookOnNumber: 'use_inbound_webhook_on_number',
};
const USECASES = ['notifications', 'marketing', 'verification', 'discussion', 'poll', 'undeclared'];

function serviceOf(ctx, sid) {
  const s = ctx.state.services.get(sid);
  if (!s || s.account !== ctx.principal.sid) throw notFound(ctx.path);
  return s;
}

function applyServiceForm(ctx, s) {
  const f = ctx.f;
  if (f('FriendlyName') !== null) {
    if (f('FriendlyName').length > 64) throw badParam('FriendlyName must be at most 64 characters long');
    s.friendly_name = f('FriendlyName');
  }
  if (f('InboundRequestUrl') !== null) s.inbound_request_url = P.url(f('InboundRequestUrl'), 'InboundRequestUrl');
  if (f('InboundMethod') !== null) s.inbound_method = P.method(f('InboundMethod'), 'InboundMethod');
  if (f('FallbackUrl') !== null) s.fallback_url = P.url(f('FallbackUrl'), 'FallbackUrl');
  if (f('FallbackMethod') !== null) s.fallback_method = P.method(f('FallbackMethod'), 'FallbackMethod');
  if (f('StatusCallback') !== null) s.status_callback = P.url(f('StatusCallback'), 'StatusCallback');
  for (const [name, field] of Object.entries(BOOLS)) if (f(name) !== null) s[field] = P.bool(f(name), name);
  if (f('ScanMessageContent') !== null) {
    if (!['inherit', 'enable', 'disable'].includes(f('ScanMessageContent'))) {
      throw badParam(`Invalid ScanMessageContent: ${f('ScanMessageContent')}. Must be inherit, enable or disable`);
    }
    s.scan_message_content = f('ScanMessageContent');
  }
  if (f('ValidityPeriod') !== null) {
    const v = f('ValidityPeriod');
    if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 36000) {
      throw badParam(`Invalid ValidityPeriod: ${v}. ValidityPeriod must be an integer between 1 and 36000`);
    }
    s.validity_period = Number(v);
  }
  if (f('Usecase') !== null) {
    if (!USECASES.includes(f('Usecase'))) throw badParam(`Invalid Usecase: ${f('Usecase')}. Must be one of ${USECASES.join(', ')}`);
    s.usecase = f('Usecase');
  }
}

// The numbers of a service's pool, by phone number.
const poolOf = (state, s) => state.numbersOf(s.account).filter((n) => n.messaging_service_sid === s.sid);

function numberInService(ctx, s) {
  const n = ctx.state.numbers.get(ctx.params.Sid);
  if (!n || n.messaging_service_sid !== s.sid) throw notFound(ctx.path);
  return n;
}

const EMERGENCY_STATUSES = ['registered', 'unregistered', 'pending-registration', 'registration-failure',
  'pending-unregistration', 'unregistration-failure'];

module.exports = (emu) => {
  emu.control('POST', /^\/_emulator\/numbers\/(?<Sid>PN[^/]+)$/, ({ state, json, params }) => {
    const n = state.numbers.get(params.Sid);
    if (!n) throw notFound(`/_emulator/numbers/${params.Sid}`);
    if (json.emergency_address_status !== undefined) {
      if (!EMERGENCY_STATUSES.includes(json.emergency_address_status)) {
        throw badParam(`emergency_address_status must be one of ${EMERGENCY_STATUSES.join(', ')}`);
      }
      n.emergency_address_status = json.emergency_address_status;
      n.updated = state.now();
    }
    return { body: { sid: n.sid, emergency_address_sid: n.emergency_address_sid, emergency_address_status: n.emergency_address_status } };
  });
  emu.route('POST', /^\/v1\/Services$/, (ctx) => {
    const s = ctx.state;
    if (ctx.f('FriendlyName') === null) throw badParam('FriendlyName is required');
    const now = s.now();
    const svc = {
      sid: s.newSid('MG'), account: ctx.principal.sid, friendly_name: null, created: now, updated: now,
      inbound_request_url: null, inbound_method: 'POST', fallback_url: null, fallback_method: 'POST',
      status_callback: null, sticky_sender: true, mms_converter: true, smart_encoding: true,
      scan_message_content: 'inherit', fallback_to_long_code: false, area_code_geomatch: true,
      synchronous_validation: false, validity_period: 36000, usecase: 'undeclared',
      use_inbound_webhook_on_number: false,
    };
    applyServiceForm(ctx, svc);
    s.services.set(svc.sid, svc);
    s.sidKey.set(svc.sid, String(s.counters.MG).padStart(8, '0'));
    svc.key = s.sidKey.get(svc.sid);
    return { status: 201, body: R.messagingService(svc, ctx.base) };
  });
  emu.route('GET', /^\/v1\/Services$/, (ctx) => {
    const items = [...ctx.state.services.values()].filter((x) => x.account === ctx.principal.sid);
    const page = R.slicePage(items, P.paging(ctx), (x) => x.key, ctx.state.sidKey);
    return { body: R.pageMeta('services', ctx.base, '/v1/Services', P.filtersOf(ctx.query), page, page.chunk.map((x) => R.messagingService(x, ctx.base))) };
  });
  emu.route('GET', /^\/v1\/Services\/(?<Sid>MG[^/]*)$/, (ctx) => ({ body: R.messagingService(serviceOf(ctx, ctx.params.Sid), ctx.base) }));
  emu.route('POST', /^\/v1\/Services\/(?<Sid>MG[^/]*)$/, (ctx) => {
    const svc = serviceOf(ctx, ctx.params.Sid);
    applyServiceForm(ctx, svc);
    svc.updated = ctx.state.now();
    return { body: R.messagingService(svc, ctx.base) };
  });
  emu.route('DELETE', /^\/v1\/Services\/(?<Sid>MG[^/]*)$/, (ctx) => {
    const svc = serviceOf(ctx, ctx.params.Sid);
    for (const n of ctx.state.numbers.values()) if (n.messaging_service_sid === svc.sid) n.messaging_service_sid = null;
    ctx.state.services.delete(svc.sid);
    return { status: 204 };
  });

  emu.route('POST', /^\/v1\/Services\/(?<ServiceSid>MG[^/]*)\/PhoneNumbers$/, (ctx) => {
    const svc = serviceOf(ctx, ctx.params.ServiceSid);
    const pn = ctx.f('PhoneNumberSid');
    if (pn === null) throw badParam('PhoneNumberSid is required');
    P.sid(pn, 'PN', 'PhoneNumberSid');
    const n = ctx.state.numbers.get(pn);
    if (!n || n.account !== svc.account) {
      throw notFound(`/2010-04-01/Accounts/${svc.account}/IncomingPhoneNumbers/${pn}.json`);
    }
    if (!n.rec.caps.sms) throw err(400, 21715, `Phone Number ${n.phone} is not SMS capable and cannot be added to a Messaging Service`);
    if (n.messaging_service_sid === svc.sid) throw err(400, 21710, `Phone Number ${pn} is already in Messaging Service ${svc.sid}`);
    if (n.messaging_service_sid) {
      throw err(400, 21712, `Phone Number ${pn} is already associated with another Messaging Service (${n.messaging_service_sid})`);
    }
    if (poolOf(ctx.state, svc).length >= POOL_LIMIT) {
      throw err(400, 21714, `Messaging Service ${svc.sid} already has ${POOL_LIMIT} phone numbers, the most a service may hold`);
    }
    n.messaging_service_sid = svc.sid;
    n.messaging_added = ctx.state.now();
    svc.updated = n.messaging_added;
    return { status: 201, body: R.servicePhoneNumber(n, ctx.base) };
  });
  emu.route('GET', /^\/v1\/Services\/(?<ServiceSid>MG[^/]*)\/PhoneNumbers$/, (ctx) => {
    const svc = serviceOf(ctx, ctx.params.ServiceSid);
    const page = R.slicePage(poolOf(ctx.state, svc), P.paging(ctx), (n) => n.phone, ctx.state.sidKey);
    const path = `/v1/Services/${svc.sid}/PhoneNumbers`;
    return { body: R.pageMeta('phone_numbers', ctx.base, path, P.filtersOf(ctx.query), page, page.chunk.map((n) => R.servicePhoneNumber(n, ctx.base))) };
  });
  emu.route('GET', /^\/v1\/Services\/(?<ServiceSid>MG[^/]*)\/PhoneNumbers\/(?<Sid>[^/]+)$/, (ctx) => {
    const svc = serviceOf(ctx, ctx.params.ServiceSid);
    return { body: R.servicePhoneNumber(numberInService(ctx, svc), ctx.base) };
  });
  emu.route('DELETE', /^\/v1\/Services\/(?<ServiceSid>MG[^/]*)\/PhoneNumbers\/(?<Sid>[^/]+)$/, (ctx) => {
    const n = numberInService(ctx, serviceOf(ctx, ctx.params.ServiceSid));
    n.messaging_service_sid = null;
    n.messaging_added = null;
    return { status: 204 };
  });
};

module.exports.POOL_LIMIT = POOL_LIMIT;
