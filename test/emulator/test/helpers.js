'use strict';
// Shared by the test files: start an emulator process on a free port and
// talk to it with plain HTTP (so socket-level faults stay observable).

const { spawn } = require('child_process');
const http = require('http');
const path = require('path');

const BIN = path.join(__dirname, '..', '..', 'twilio-emulator');
const ACCOUNT = 'AC0123456789abcdef0123456789abcdef';
const TOKEN = 'emulator-test-token';
const API_KEY = 'SKfedcba9876543210fedcba9876543210';
const API_SECRET = 'emulator-test-secret';

function startEmulator(extra = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, '--port', '0', '--account-sid', ACCOUNT, '--auth-token', TOKEN,
      '--api-key', API_KEY, '--api-secret', API_SECRET, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`emulator did not start: ${err}`)), 10000);
    child.stderr.on('data', (d) => { err += d; });
    child.stdout.on('data', (d) => {
      out += d;
      const m = /^twilio-emulator listening on http:\/\/127\.0\.0\.1:(\d+)\n/.exec(out);
      if (m) {
        clearTimeout(timer);
        const port = Number(m[1]);
        const emu = {
          child, port, base: `http://127.0.0.1:${port}`, stdout: () => out, stderr: () => err,
          stop: () => new Promise((r) => {
            if (child.exitCode !== null) return r(child.exitCode);
            child.once('exit', (code) => r(code));
            child.kill('SIGTERM');
          }),
        };
        emu.req = (method, p, opts = {}) => request(port, method, p, opts);
        emu.api = (method, p, opts = {}) => request(port, method, `/2010-04-01/Accounts/${opts.account || ACCOUNT}${p}`, opts);
        emu.control = async (method, p, json) => (await request(port, method, `/_emulator/${p}`, { json, auth: false })).json;
        resolve(emu);
      }
    });
    child.once('exit', (code) => reject(new Error(`emulator exited ${code}: ${err}`)));
  });
}

// opts: {form: object (arrays repeat keys), query: object, json, auth: [user, pass] | false, agent}
function request(port, method, p, opts = {}) {
  let body = null;
  const headers = {};
  if (opts.form) {
    const sp = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.form)) for (const x of [].concat(v)) sp.append(k, x);
    body = sp.toString();
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
  } else if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['Content-Type'] = 'application/json';
  }
  if (opts.auth !== false) {
    const [u, pw] = opts.auth || [ACCOUNT, TOKEN];
    headers.Authorization = `Basic ${Buffer.from(`${u}:${pw}`).toString('base64')}`;
  }
  let full = p;
  if (opts.query) full += `?${new URLSearchParams(opts.query).toString()}`;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: full, headers, agent: opts.agent || false,
      timeout: opts.timeout || 10000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('aborted', () => reject(Object.assign(new Error('aborted'), { code: 'ECONNRESET', partial: Buffer.concat(chunks).toString() })));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json;
        try { json = text ? JSON.parse(text) : undefined; } catch (e) { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

// The Twilio error body shape, asserted by many tests.
function assertTwilioError(assert, res, status, code) {
  assert.strictEqual(res.status, status, res.text);
  assert.deepStrictEqual(Object.keys(res.json).sort(), ['code', 'message', 'more_info', 'status']);
  assert.strictEqual(res.json.code, code, res.text);
  assert.strictEqual(res.json.status, status);
  assert.strictEqual(res.json.more_info, `https://www.twilio.com/docs/errors/${code}`);
  assert.ok(res.json.message.length > 0);
}

module.exports = { startEmulator, request, assertTwilioError, ACCOUNT, TOKEN, API_KEY, API_SECRET, BIN };
