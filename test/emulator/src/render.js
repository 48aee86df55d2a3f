'use strict';
// How resources look on the wire. 2010-04-01 resources use RFC 2822 dates and
// the 2010 paging fields with relative URIs; v1/v2 resources use ISO 8601 and
// a `meta` block with absolute URLs built from the Host the client reached.

const { TYPES } = require('./geo');

const rfc2822 = (d) => d.toUTCString().replace('GMT', '+0000');
const iso8601 = (d) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

// Picks one page out of a sorted list. PageToken PA<sid>/PB<sid> resumes after
// / before that item (by its sort key, so deletions do not shift pages);
// without a token, Page * PageSize is the offset.
function slicePage(items, opts, keyOf, sidKey) {
  const { pageSize, page, pageToken } = opts;
  let start = page * pageSize;
  let chunk;
  const key = pageToken ? sidKey.get(pageToken.slice(2)) : undefined;
  if (key !== undefined && pageToken.startsWith('PA')) {
    const i = items.findIndex((it) => keyOf(it) > key);
    chunk = i < 0 ? [] : items.slice(i, i + pageSize);
  } else if (key !== undefined && pageToken.startsWith('PB')) {
    let i = items.findIndex((it) => keyOf(it) >= key);
    if (i < 0) i = items.length;
    chunk = items.slice(Math.max(0, i - pageSize), i);
  } else {
    chunk = items.slice(start, start + pageSize);
  }
  const first = chunk[0], last = chunk[chunk.length - 1];
  const firstIdx = first ? items.indexOf(first) : start;
  const hasNext = !!last && items.indexOf(last) < items.length - 1;
  return {
    chunk, page, pageSize, start, token: pageToken || null,
    nextToken: hasNext ? `PA${last.sid}` : null,
    prevToken: page > 0 && first && firstIdx > 0 ? `PB${first.sid}` : null,
  };
}

function qs(filters, extra) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) if (v !== undefined && v !== null) p.append(k, v);
  for (const [k, v] of Object.entries(extra)) if (v !== undefined && v !== null) p.append(k, v);
  return p.toString();
}

// 2010-04-01 list envelope: items under `key` plus Twilio's paging fields.
function page2010(key, path, filters, pg, rendered) {
  const u = (extra) => `${path}?${qs(filters, { PageSize: pg.pageSize, ...extra })}`;
  const count = rendered.length;
  return {
    [key]: rendered,
    end: count ? pg.start + count - 1 : pg.start,
    first_page_uri: u({ Page: 0 }),
    next_page_uri: pg.nextToken ? u({ Page: pg.page + 1, PageToken: pg.nextToken }) : null,
    page: pg.page,
    page_size: pg.pageSize,
    previous_page_uri: pg.prevToken ? u({ Page: pg.page - 1, PageToken: pg.prevToken }) : null,
    start: pg.start,
    uri: u({ Page: pg.page, PageToken: pg.token }),
  };
}

// v1/v2 list envelope.
function pageMeta(key, base, path, filters, pg, rendered) {
  const u = (extra) => `${base}${path}?${qs(filters, { PageSize: pg.pageSize, ...extra })}`;
  return {
    [key]: rendered,
    meta: {
      first_page_url: u({ Page: 0 }),
      key,
      next_page_url: pg.nextToken ? u({ Page: pg.page + 1, PageToken: pg.nextToken }) : null,
      page: pg.page,
      page_size: pg.pageSize,
      previous_page_url: pg.prevToken ? u({ Page: pg.page - 1, PageToken: pg.prevToken }) : null,
      url: u({ Page: pg.page, PageToken: pg.token }),
    },
  };
}

function incomingUri(n) {
  return `/2010-04-01/Accounts/${n.account}/IncomingPhoneNumbers/${n.sid}.json`;
}

// IncomingPhoneNumber: every field of the spec's schema, lower-case capability keys.
function incoming(n) {
  const c = n.rec.caps;
  return {
    account_sid: n.account,
    address_sid: n.address_sid,
    address_requirements: n.rec.addr,
    api_version: n.api_version,
    beta: n.rec.beta,
    capabilities: { voice: c.voice, sms: c.sms, mms: c.mms, fax: c.fax },
    date_created: rfc2822(n.created),
    date_updated: rfc2822(n.updated),
    friendly_name: n.friendly_name,
    identity_sid: n.identity_sid,
    phone_number: n.phone,
    origin: n.origin,
    sid: n.sid,
    sms_application_sid: n.sms_application_sid,
    sms_fallback_method: n.sms_fallback_method,
    sms_fallback_url: n.sms_fallback_url,
    sms_method: n.sms_method,
    sms_url: n.sms_url,
    status_callback: n.status_callback,
    status_callback_method: n.status_callback_method,
    trunk_sid: n.trunk_sid,
    uri: incomingUri(n),
    voice_receive_mode: n.voice_receive_mode,
    voice_application_sid: n.voice_application_sid,
    voice_caller_id_lookup: n.voice_caller_id_lookup,
    voice_fallback_method: n.voice_fallback_method,
    voice_fallback_url: n.voice_fallback_url,
    voice_method: n.voice_method,
    voice_url: n.voice_url,
    emergency_status: n.emergency_status,
    emergency_address_sid: n.emergency_address_sid,
    emergency_address_status: n.emergency_address_status,
    bundle_sid: n.bundle_sid,
    status: 'in-use',
    type: TYPES[n.rec.type] ? TYPES[n.rec.type].incoming : n.rec.type,
    subresource_uris: {
      assigned_add_ons: `/2010-04-01/Accounts/${n.account}/IncomingPhoneNumbers/${n.sid}/AssignedAddOns.json`,
    },
  };
}

// A number as the trunking v1 PhoneNumbers resource shows it.
function trunkNumber(n, base) {
  const c = n.rec.caps;
  return {
    account_sid: n.account,
    address_requirements: n.rec.addr,
    api_version: n.api_version,
    beta: n.rec.beta,
    capabilities: { voice: c.voice, sms: c.sms, mms: c.mms, fax: c.fax },
    date_created: iso8601(n.created),
    date_updated: iso8601(n.updated),
    friendly_name: n.friendly_name,
    links: { phone_number: `${base}${incomingUri(n)}` },
    phone_number: n.phone,
    sid: n.sid,
    sms_application_sid: n.sms_application_sid,
    sms_fallback_method: n.sms_fallback_method,
    sms_fallback_url: n.sms_fallback_url,
    sms_method: n.sms_method,
    sms_url: n.sms_url,
    status_callback: n.status_callback,
    status_callback_method: n.status_callback_method,
    trunk_sid: n.trunk_sid,
    url: `${base}/v1/Trunks/${n.trunk_sid}/PhoneNumbers/${n.sid}`,
    voice_application_sid: n.voice_application_sid,
    voice_caller_id_lookup: n.voice_caller_id_lookup,
    voice_fallback_method: n.voice_fallback_method,
    voice_fallback_url: n.voice_fallback_url,
    voice_method: n.voice_method,
    voice_url: n.voice_url,
  };
}

function trunk(t, base) {
  const url = `${base}/v1/Trunks/${t.sid}`;
  return {
    account_sid: t.account,
    domain_name: t.domain_name,
    disaster_recovery_method: t.disaster_recovery_method,
    disaster_recovery_url: t.disaster_recovery_url,
    friendly_name: t.friendly_name,
    secure: t.secure,
    recording: { mode: 'do-not-record', trim: 'do-not-trim' },
    transfer_mode: t.transfer_mode,
    transfer_caller_id: t.transfer_caller_id,
    cnam_lookup_enabled: t.cnam_lookup_enabled,
    auth_type: null,
    symmetric_rtp_enabled: false,
    auth_type_set: [],
    date_created: iso8601(t.created),
    date_updated: iso8601(t.updated),
    sid: t.sid,
    url,
    links: {
      origination_urls: `${url}/OriginationUrls`,
      credential_lists: `${url}/CredentialLists`,
      ip_access_control_lists: `${url}/IpAccessControlLists`,
      phone_numbers: `${url}/PhoneNumbers`,
      recording: `${url}/Recording`,
    },
  };
}

function hostedOrder(o, base) {
  return {
    sid: o.sid,
    account_sid: o.account,
    incoming_phone_number_sid: o.incoming_phone_number_sid,
    address_sid: o.address_sid,
    signing_document_sid: o.signing_document_sid,
    phone_number: o.phone_number,
    capabilities: { sms: o.sms_capability, voice: false },
    friendly_name: o.friendly_name,
    status: o.status,
    failure_reason: o.failure_reason,
    date_created: iso8601(o.created),
    date_updated: iso8601(o.updated),
    email: o.email,
    cc_emails: o.cc_emails,
    url: `${base}/v2/HostedNumber/Orders/${o.sid}`,
    contact_title: o.contact_title,
    contact_phone_number: o.contact_phone_number,
    bulk_hosting_request_sid: null,
    next_step: o.next_step,
    verification_attempts: o.verification_attempts,
    verification_call_sids: o.verification_call_sids,
    verification_call_delay: o.verification_call_delay,
    verification_call_extension: o.verification_call_extension,
    verification_code: o.verification_code,
    verification_type: 'phone-call',
  };
}

function account(a) {
  const uri = `/2010-04-01/Accounts/${a.sid}.json`;
  const sub = (name) => `/2010-04-01/Accounts/${a.sid}/${name}.json`;
  return {
    auth_token: a.auth_token,
    date_created: rfc2822(a.created),
    date_updated: rfc2822(a.updated),
    friendly_name: a.friendly_name,
    owner_account_sid: a.owner_account_sid,
    sid: a.sid,
    status: a.status,
    subresource_uris: {
      available_phone_numbers: sub('AvailablePhoneNumbers'),
      incoming_phone_numbers: sub('IncomingPhoneNumbers'),
      addresses: sub('Addresses'),
      applications: sub('Applications'),
    },
    type: a.type,
    uri,
  };
}

// A Messaging Service (messaging.twilio.com/v1/Services).
function messagingService(s, base) {
  const url = `${base}/v1/Services/${s.sid}`;
  return {
    sid: s.sid,
    account_sid: s.account,
    friendly_name: s.friendly_name,
    date_created: iso8601(s.created),
    date_updated: iso8601(s.updated),
    inbound_request_url: s.inbound_request_url,
    inbound_method: s.inbound_method,
    fallback_url: s.fallback_url,
    fallback_method: s.fallback_method,
    status_callback: s.status_callback,
    sticky_sender: s.sticky_sender,
    mms_converter: s.mms_converter,
    smart_encoding: s.smart_encoding,
    scan_message_content: s.scan_message_content,
    fallback_to_long_code: s.fallback_to_long_code,
    area_code_geomatch: s.area_code_geomatch,
    synchronous_validation: s.synchronous_validation,
    validity_period: s.validity_period,
    url,
    links: {
      phone_numbers: `${url}/PhoneNumbers`,
      short_codes: `${url}/ShortCodes`,
      alpha_senders: `${url}/AlphaSenders`,
      messages: `${url}/Messages`,
      us_app_to_person: `${url}/Compliance/Usa2p`,
      us_app_to_person_usecases: `${url}/Compliance/Usa2p/Usecases`,
      channel_senders: `${url}/ChannelSenders`,
    },
    usecase: s.usecase,
    us_app_to_person_registered: false,
    use_inbound_webhook_on_number: s.use_inbound_webhook_on_number,
  };
}

// A number in a Messaging Service's sender pool: capabilities as an array of
// names (Voice, SMS, MMS, Fax), as this resource has them.
function servicePhoneNumber(n, base) {
  const c = n.rec.caps;
  return {
    sid: n.sid,
    account_sid: n.account,
    service_sid: n.messaging_service_sid,
    date_created: iso8601(n.messaging_added),
    date_updated: iso8601(n.messaging_added),
    phone_number: n.phone,
    country_code: n.rec.iso,
    capabilities: [['Voice', c.voice], ['SMS', c.sms], ['MMS', c.mms], ['Fax', c.fax]].filter((x) => x[1]).map((x) => x[0]),
    url: `${base}/v1/Services/${n.messaging_service_sid}/PhoneNumbers/${n.sid}`,
  };
}

module.exports = {
  rfc2822, iso8601, slicePage, page2010, pageMeta, incoming, trunkNumber, trunk, hostedOrder, account, incomingUri, qs,
  messagingService, servicePhoneNumber,
};
