'use strict';
// trunking.twilio.com/v1/Trunks (create, list, fetch, update, delete) and
// /v1/Trunks/{TrunkSid}/PhoneNumbers (associate, list, fetch, remove), as
// Twilio has them. The association is the IncomingPhoneNumber's trunk_sid, so it is
// visible from both sides.

const { notFound, badParam } = require('../errors');
const P = require('../params');
const R = require('../render');

const TRANSFER_MODES = ['disable-all', 'enable-all', 'sip-only'];
const CALLER_IDS = ['from-transferee', 'from-transferor'];

function trunkOf(ctx, sid) {
  const t = ctx.state.trunks.get(sid);
  if (!t || t.account !== ctx.principal.sid) throw notFound(ctx.path);
  return t;
}

function applyTrunkForm(ctx, t) {
  const f = ctx.f;
  if (f('FriendlyName') !== null) t.friendly_name = f('FriendlyName');
  if (f('DomainName') !== null) {
    const d = f('DomainName');
    if (!/^[A-Za-z0-9-]+\.pstn\.twilio\.com$/.test(d)) {
      throw badParam(`Invalid DomainName: ${d}. It must end with pstn.twilio.com`);
    }
    for (const other of ctx.state.trunks.values()) {
      if (other !== t && other.domain_name === d) throw badParam(`DomainName ${d} is already in use`);
    }
    t.domain_name = d;
  }
  if (f('DisasterRecoveryUrl') !== null) t.disaster_recovery_url = P.url(f('DisasterRecoveryUrl'), 'DisasterRecoveryUrl');
  if (f('DisasterRecoveryMethod') !== null) t.disaster_recovery_method = P.method(f('DisasterRecoveryMethod'), 'DisasterRecoveryMethod');
  if (f('TransferMode') !== null) {
    if (!TRANSFER_MODES.includes(f('TransferMode'))) throw badParam(`Invalid TransferMode: ${f('TransferMode')}`);
    t.transfer_mode = f('TransferMode');
  }
  if (f('TransferCallerId') !== null) {
    if (!CALLER_IDS.includes(f('TransferCallerId'))) throw badParam(`Invalid TransferCallerId: ${f('TransferCallerId')}`);
    t.transfer_caller_id = f('TransferCallerId');
  }
  if (f('Secure') !== null) t.secure = P.bool(f('Secure'), 'Secure');
  if (f('CnamLookupEnabled') !== null) t.cnam_lookup_enabled = P.bool(f('CnamLookupEnabled'), 'CnamLookupEnabled');
}

function numberOnTrunk(ctx, t) {
  const n = ctx.state.numbers.get(ctx.params.Sid);
  if (!n || n.trunk_sid !== t.sid) throw notFound(ctx.path);
  return n;
}

module.exports = (emu) => {
  emu.route('POST', /^\/v1\/Trunks$/, (ctx) => {
    const s = ctx.state;
    const now = s.now();
    const t = {
      sid: s.newSid('TK'), account: ctx.principal.sid, friendly_name: null, domain_name: null,
      disaster_recovery_url: null, disaster_recovery_method: null, transfer_mode: 'disable-all',
      transfer_caller_id: 'from-transferee', secure: false, cnam_lookup_enabled: false, created: now, updated: now,
    };
    applyTrunkForm(ctx, t);
    s.trunks.set(t.sid, t);
    s.sidKey.set(t.sid, String(s.counters.TK).padStart(8, '0'));
    t.key = s.sidKey.get(t.sid);
    return { status: 201, body: R.trunk(t, ctx.base) };
  });
  emu.route('GET', /^\/v1\/Trunks$/, (ctx) => {
    const items = [...ctx.state.trunks.values()].filter((t) => t.account === ctx.principal.sid);
    const page = R.slicePage(items, P.paging(ctx), (t) => t.key, ctx.state.sidKey);
    return { body: R.pageMeta('trunks', ctx.base, '/v1/Trunks', P.filtersOf(ctx.query), page, page.chunk.map((t) => R.trunk(t, ctx.base))) };
  });
  emu.route('GET', /^\/v1\/Trunks\/(?<Sid>TK[^/]*)$/, (ctx) => ({ body: R.trunk(trunkOf(ctx, ctx.params.Sid), ctx.base) }));
  emu.route('POST', /^\/v1\/Trunks\/(?<Sid>TK[^/]*)$/, (ctx) => {
    const t = trunkOf(ctx, ctx.params.Sid);
    applyTrunkForm(ctx, t);
    t.updated = ctx.state.now();
    return { body: R.trunk(t, ctx.base) };
  });
  emu.route('DELETE', /^\/v1\/Trunks\/(?<Sid>TK[^/]*)$/, (ctx) => {
    const t = trunkOf(ctx, ctx.params.Sid);
    for (const n of ctx.state.numbers.values()) if (n.trunk_sid === t.sid) n.trunk_sid = null;
    ctx.state.trunks.delete(t.sid);
    return { status: 204 };
  });

  emu.route('POST', /^\/v1\/Trunks\/(?<TrunkSid>TK[^/]*)\/PhoneNumbers$/, (ctx) => {
    const t = trunkOf(ctx, ctx.params.TrunkSid);
    const pn = ctx.f('PhoneNumberSid');
    if (pn === null) throw badParam('PhoneNumberSid is required');
    P.sid(pn, 'PN', 'PhoneNumberSid');
    const n = ctx.state.numbers.get(pn);
    if (!n || n.account !== t.account) {
      throw notFound(`/2010-04-01/Accounts/${t.account}/IncomingPhoneNumbers/${pn}.json`);
    }
    n.trunk_sid = t.sid; // moves the number if it was on another trunk
    n.voice_application_sid = null;
    n.updated = ctx.state.now();
    return { status: 201, body: R.trunkNumber(n, ctx.base) };
  });
  emu.route('GET', /^\/v1\/Trunks\/(?<TrunkSid>TK[^/]*)\/PhoneNumbers$/, (ctx) => {
    const t = trunkOf(ctx, ctx.params.TrunkSid);
    const items = ctx.state.numbersOf(t.account).filter((n) => n.trunk_sid === t.sid);
    const page = R.slicePage(items, P.paging(ctx), (n) => n.phone, ctx.state.sidKey);
    const path = `/v1/Trunks/${t.sid}/PhoneNumbers`;
    return { body: R.pageMeta('phone_numbers', ctx.base, path, P.filtersOf(ctx.query), page, page.chunk.map((n) => R.trunkNumber(n, ctx.base))) };
  });
  emu.route('GET', /^\/v1\/Trunks\/(?<TrunkSid>TK[^/]*)\/PhoneNumbers\/(?<Sid>[^/]+)$/, (ctx) => {
    const t = trunkOf(ctx, ctx.params.TrunkSid);
    return { body: R.trunkNumber(numberOnTrunk(ctx, t), ctx.base) };
  });
  emu.route('DELETE', /^\/v1\/Trunks\/(?<TrunkSid>TK[^/]*)\/PhoneNumbers\/(?<Sid>[^/]+)$/, (ctx) => {
    const n = numberOnTrunk(ctx, trunkOf(ctx, ctx.params.TrunkSid));
    n.trunk_sid = null;
    n.updated = ctx.state.now();
    return { status: 204 };
  });
};
