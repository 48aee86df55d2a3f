'use strict';
// Parsing and checking of request parameters the way Twilio does: booleans
// are "true"/"false", PageSize is 1..1000 (default 50), SIDs carry their
// two-letter prefix, phone numbers are E.164.

const { badParam, err } = require('./errors');

function bool(value, name) {
  if (value === null || value === undefined) return undefined;
  const v = String(value).toLowerCase();
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw badParam(`Invalid value for ${name}: ${value}. Must be true or false`);
}

function pageSize(value) {
  if (value === null || value === undefined) return 50;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 1000) {
    throw badParam(`Invalid PageSize: ${value}. PageSize must be an integer between 1 and 1000`);
  }
  return Number(value);
}

function page(value) {
  if (value === null || value === undefined) return 0;
  if (!/^\d+$/.test(value)) throw badParam(`Invalid Page: ${value}. Page must be an integer >= 0`);
  return Number(value);
}

// Common paging options of list endpoints.
function paging(ctx) {
  return { pageSize: pageSize(ctx.q('PageSize')), page: page(ctx.q('Page')), pageToken: ctx.q('PageToken') };
}

// Filters to echo in paging URIs: every query parameter except the paging ones.
function filtersOf(query) {
  const out = {};
  for (const [k, v] of query) if (k !== 'PageSize' && k !== 'Page' && k !== 'PageToken') out[k] = v;
  return out;
}

const SID = /^[A-Z]{2}[0-9a-fA-F]{32}$/;
function sid(value, prefix, name) {
  if (value === null || value === undefined) return undefined;
  if (!SID.test(value) || !value.startsWith(prefix)) {
    throw badParam(`Invalid ${name}: ${value}. It must be a ${prefix} SID of 34 characters`);
  }
  return value;
}

function method(value, name) {
  if (value === null || value === undefined) return undefined;
  const v = String(value).toUpperCase();
  if (v !== 'GET' && v !== 'POST') throw badParam(`Invalid ${name}: ${value}. Must be GET or POST`);
  return v;
}

function url(value, name) {
  if (value === null || value === undefined) return undefined;
  if (value === '') return null; // Twilio clears a URL set to the empty string
  if (!/^https?:\/\/[^\s]+$/i.test(value)) throw badParam(`Invalid ${name}: ${value}. Must be an http(s) URL`);
  return value;
}

const E164 = /^\+[1-9]\d{6,14}$/;
function phone(value, code = 21421) {
  if (!E164.test(value || '')) throw err(400, code, `The phone number ${value || '(none)'} is not a valid E.164 phone number`);
  return value;
}

module.exports = { bool, pageSize, page, paging, filtersOf, sid, method, url, phone, E164 };
