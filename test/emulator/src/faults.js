'use strict';
// Fault injection. A fault matches requests by method (optional) and a regex
// on the path, hits `times` of them (default 1, 0 = until cleared), and turns
// each into one of: latency, an error status (with Retry-After), a dropped
// connection before or after the request took effect, a reply that never
// comes, or a malformed / truncated body.

const { badParam } = require('./errors');

const ACTIONS = ['latency', 'status', 'reset_before', 'reset_after', 'hang', 'malformed', 'truncate'];
const DEFAULT_CODES = { 429: 20429, 500: 20500, 503: 20503 };

function addFault(state, spec) {
  if (!spec || typeof spec !== 'object') throw badParam('fault must be a JSON object');
  if (!ACTIONS.includes(spec.action)) throw badParam(`action must be one of ${ACTIONS.join(', ')}`);
  let re;
  try {
    re = new RegExp(spec.path === undefined ? '.*' : String(spec.path));
  } catch (e) {
    throw badParam(`path is not a valid regular expression: ${e.message}`);
  }
  const times = spec.times === undefined ? 1 : Number(spec.times);
  if (!Number.isInteger(times) || times < 0) throw badParam('times must be an integer >= 0');
  const fault = {
    id: ++state.faultSeq,
    method: spec.method ? String(spec.method).toUpperCase() : null,
    path: re.source,
    action: spec.action,
    ms: spec.ms === undefined ? null : Number(spec.ms),
    status: spec.status === undefined ? null : Number(spec.status),
    code: spec.code === undefined ? null : Number(spec.code),
    retry_after: spec.retry_after === undefined ? null : spec.retry_after,
    times,
    hits: 0,
    re,
  };
  if (fault.action === 'latency' && !(fault.ms !== null && fault.ms >= 0)) throw badParam('latency needs ms >= 0');
  if (fault.action === 'status') {
    if (!(fault.status >= 100 && fault.status <= 599)) throw badParam('status action needs an HTTP status');
    if (fault.code === null) fault.code = DEFAULT_CODES[fault.status] || fault.status;
  }
  state.faults.push(fault);
  return fault;
}

const publicFault = ({ re, ...f }) => ({ ...f, remaining: f.times === 0 ? null : f.times - f.hits });

// Finds the first live fault for this request and counts the hit.
function takeFault(state, method, path) {
  for (const f of state.faults) {
    if (f.method && f.method !== method) continue;
    if (f.times !== 0 && f.hits >= f.times) continue;
    if (!f.re.test(path)) continue;
    f.hits++;
    return f;
  }
  return null;
}

module.exports = { addFault, takeFault, publicFault, ACTIONS };
