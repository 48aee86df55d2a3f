'use strict';
// numbers.twilio.com/v2/HostedNumber/Orders: create, list with
// filters, fetch, update (the user may only ask for pending-verification),
// and cancel (DELETE) in the statuses Twilio allows. Carriers and Twilio's
// staff move orders through the rest of the life cycle; the emulator's
// control POST /_emulator/hosted/{Sid} stands in for them (moveOrder below).

const { err, notFound, badParam } = require('../errors');
const { CA_AREA_CODES } = require('../geo');
const P = require('../params');
const R = require('../render');

const STATUSES = ['twilio-processing', 'received', 'pending-verification', 'verified', 'pending-loa',
  'carrier-processing', 'testing', 'completed', 'failed', 'action-required'];
const CANCELLABLE = ['received', 'pending-verification', 'verified', 'pending-loa'];
const TOLL_FREE = ['800', '833', '844', '855', '866', '877', '888'];
const FINAL = ['completed', 'failed'];

function orderOf(ctx) {
  const o = ctx.state.orders.get(ctx.params.Sid);
  if (!o || !ctx.state.canAccess(ctx.principal, o.account)) throw notFound(ctx.path);
  return o;
}

function required(ctx, name) {
  const v = ctx.f(name);
  if (v === null || v === '') throw badParam(`Missing required parameter ${name} in the post body`);
  return v;
}

function create(ctx) {
  const s = ctx.state;
  const phone = P.phone(required(ctx, 'PhoneNumber'));
  if (!phone.startsWith('+1')) throw err(400, 21421, `${phone} cannot be hosted: only US and Canada numbers can be hosted`);
  const contact = P.phone(required(ctx, 'ContactPhoneNumber'));
  const addressSid = P.sid(required(ctx, 'AddressSid'), 'AD', 'AddressSid');
  const email = required(ctx, 'Email');
  let account = ctx.principal.sid;
  if (ctx.f('AccountSid') !== null) {
    account = P.sid(ctx.f('AccountSid'), 'AC', 'AccountSid');
    if (!s.canAccess(ctx.principal, account)) throw notFound(`/2010-04-01/Accounts/${account}.json`);
  }
  // A number Twilio already has (owned, or in its own inventory) or one in a live order cannot be hosted.
  if (s.byPhone.has(phone) || s.inventory.byPhone.has(phone)
      || [...s.orders.values()].some((o) => o.phone_number === phone && !FINAL.includes(o.status))) {
    throw err(400, 21422, `PhoneNumber ${phone} is not available for hosting: it is already on Twilio or in another order`);
  }
  const friendly = ctx.f('FriendlyName');
  if (friendly !== null && friendly.length > 128) throw badParam('FriendlyName must be at most 128 characters long');
  const now = s.now();
  const o = {
    sid: s.newSid('HR'), account, phone_number: phone, contact_phone_number: contact, address_sid: addressSid, email,
    friendly_name: friendly, cc_emails: ctx.form.getAll('CcEmails'), contact_title: ctx.f('ContactTitle'),
    sms_capability: P.bool(ctx.f('SmsCapability'), 'SmsCapability') !== false,
    sms_url: P.url(ctx.f('SmsUrl'), 'SmsUrl') || null, sms_method: P.method(ctx.f('SmsMethod'), 'SmsMethod') || 'POST',
    sms_fallback_url: P.url(ctx.f('SmsFallbackUrl'), 'SmsFallbackUrl') || null,
    sms_fallback_method: P.method(ctx.f('SmsFallbackMethod'), 'SmsFallbackMethod') || 'POST',
    status_callback: P.url(ctx.f('StatusCallbackUrl'), 'StatusCallbackUrl') || null,
    status_callback_method: P.method(ctx.f('StatusCallbackMethod'), 'StatusCallbackMethod') || 'POST',
    sms_application_sid: P.sid(ctx.f('SmsApplicationSid') || undefined, 'AP', 'SmsApplicationSid') || null,
    status: 'received', failure_reason: null, next_step: null, signing_document_sid: null,
    incoming_phone_number_sid: null, verification_attempts: 0, verification_call_sids: [],
    verification_call_delay: 0, verification_call_extension: null, verification_code: null,
    created: now, updated: now,
  };
  s.orders.set(o.sid, o);
  s.sidKey.set(o.sid, String(s.counters.HR).padStart(8, '0'));
  o.key = s.sidKey.get(o.sid);
  return { status: 201, body: R.hostedOrder(o, ctx.base) };
}

function list(ctx) {
  const q = ctx.q;
  const status = q('Status');
  if (status !== null && !STATUSES.includes(status)) throw badParam(`Invalid Status: ${status}`);
  const sms = P.bool(q('SmsCapability'), 'SmsCapability');
  const items = [...ctx.state.orders.values()].filter((o) => ctx.state.canAccess(ctx.principal, o.account)
    && (status === null || o.status === status)
    && (sms === undefined || o.sms_capability === sms)
    && (q('PhoneNumber') === null || o.phone_number === q('PhoneNumber'))
    && (q('IncomingPhoneNumberSid') === null || o.incoming_phone_number_sid === q('IncomingPhoneNumberSid'))
    && (q('FriendlyName') === null || o.friendly_name === q('FriendlyName')));
  const page = R.slicePage(items, P.paging(ctx), (o) => o.key, ctx.state.sidKey);
  return { body: R.pageMeta('items', ctx.base, '/v2/HostedNumber/Orders', P.filtersOf(ctx.query), page, page.chunk.map((o) => R.hostedOrder(o, ctx.base))) };
}

// The user's only move: ask for (another) ownership verification call.
function update(ctx) {
  const o = orderOf(ctx);
  const status = required(ctx, 'Status');
  if (status !== 'pending-verification') throw badParam(`Invalid Status: ${status}. You can only update a HostedNumberOrder to pending-verification`);
  if (!['received', 'pending-verification'].includes(o.status)) {
    throw badParam(`HostedNumberOrder ${o.sid} is ${o.status} and cannot be moved to pending-verification`);
  }
  const delay = ctx.f('VerificationCallDelay');
  if (delay !== null) {
    if (!/^\d+$/.test(delay) || Number(delay) > 60) throw badParam('VerificationCallDelay must be an integer between 0 and 60');
    o.verification_call_delay = Number(delay);
  }
  const ext = ctx.f('VerificationCallExtension');
  if (ext !== null) {
    if (!/^\d{0,5}$/.test(ext)) throw badParam('VerificationCallExtension must be up to 5 digits');
    o.verification_call_extension = ext || null;
  }
  const s = ctx.state;
  o.verification_attempts += 1;
  if (o.verification_attempts > 3) {
    o.status = 'action-required';
    o.failure_reason = 'Maximum verification attempts reached';
  } else {
    o.status = 'pending-verification';
    const call = s.newSid('CA');
    o.verification_call_sids.push(call);
    o.verification_code = String(parseInt(call.slice(2, 10), 16) % 10000).padStart(4, '0');
  }
  o.updated = s.now();
  return { body: R.hostedOrder(o, ctx.base) };
}

function cancel(ctx) {
  const o = orderOf(ctx);
  if (!CANCELLABLE.includes(o.status)) {
    throw badParam(`HostedNumberOrder ${o.sid} is ${o.status}; it can only be canceled while ${CANCELLABLE.join(', ')}`);
  }
  ctx.state.orders.delete(o.sid);
  return { status: 204 };
}

// Moves an order as Twilio's staff or the carrier would; `completed` creates
// the hosted IncomingPhoneNumber with the SMS configuration of the order.
function moveOrder(state, o, status, failureReason) {
  if (!STATUSES.includes(status)) throw badParam(`status must be one of ${STATUSES.join(', ')}`);
  // as at Twilio, a completed, failed or canceled order stays so
  if (FINAL.includes(o.status) && status !== o.status) {
    throw badParam(`HostedNumberOrder ${o.sid} is ${o.status}; it cannot become ${status}`);
  }
  o.status = status;
  o.updated = state.now();
  if (status === 'pending-loa' && !o.signing_document_sid) o.signing_document_sid = state.newSid('PX');
  if (status === 'failed' || status === 'action-required') {
    o.failure_reason = failureReason || (status === 'failed' ? 'The number is currently SMS enabled' : 'Carrier rejected the request');
  }
  if (status === 'completed' && !o.incoming_phone_number_sid) {
    const npa = o.phone_number.slice(2, 5);
    const d = o.phone_number.slice(1);
    const rec = {
      phone: o.phone_number, digits: d, iso: CA_AREA_CODES[npa] ? 'CA' : 'US',
      type: TOLL_FREE.includes(npa) ? 'toll_free' : 'local', addr: 'none', beta: false, bundle: false,
      caps: { voice: false, sms: o.sms_capability, mms: false, fax: false },
      friendly: `(${d.slice(1, 4)}) ${d.slice(4, 7)}-${d.slice(7)}`,
    };
    const num = state.own(o.account, rec, 'hosted', {
      sms_url: o.sms_url, sms_method: o.sms_method, sms_fallback_url: o.sms_fallback_url,
      sms_fallback_method: o.sms_fallback_method, sms_application_sid: o.sms_application_sid,
      status_callback: o.status_callback, status_callback_method: o.status_callback_method,
      address_sid: o.address_sid, ...(o.friendly_name ? { friendly_name: o.friendly_name.slice(0, 64) } : {}),
    });
    o.incoming_phone_number_sid = num.sid;
  }
  return o;
}

module.exports = (emu) => {
  emu.route('POST', /^\/v2\/HostedNumber\/Orders$/, create);
  emu.route('GET', /^\/v2\/HostedNumber\/Orders$/, list);
  emu.route('GET', /^\/v2\/HostedNumber\/Orders\/(?<Sid>HR[^/]*)$/, (ctx) => ({ body: R.hostedOrder(orderOf(ctx), ctx.base) }));
  emu.route('POST', /^\/v2\/HostedNumber\/Orders\/(?<Sid>HR[^/]*)$/, update);
  emu.route('DELETE', /^\/v2\/HostedNumber\/Orders\/(?<Sid>HR[^/]*)$/, cancel);
};
module.exports.moveOrder = moveOrder;
module.exports.STATUSES = STATUSES;
