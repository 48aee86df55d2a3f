'use strict';
// The request log's documented entry shape. Entries are stored raw (query and
// form strings, a millisecond timestamp) so that logging costs little on the
// hot path, and take this shape when GET /_emulator/requests reads them.

// {key: value} with repeated keys as arrays.
function paramsObject(sp) {
  const out = {};
  for (const [k, v] of sp) {
    if (k in out) out[k] = [].concat(out[k], v);
    else out[k] = v;
  }
  return out;
}

function publicEntry(e) {
  return {
    seq: e.seq, method: e.method, path: e.path, query: paramsObject(new URLSearchParams(e.rawQuery)),
    form: paramsObject(e.rawForm), auth_user: e.auth_user, status: e.status, twilio_code: e.twilio_code,
    started_at: new Date(e.startedMs).toISOString(), ms: e.ms, fault: e.fault,
  };
}

module.exports = { paramsObject, publicEntry };
