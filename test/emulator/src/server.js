'use strict';
// The HTTP front: one port for all of Twilio's hosts (their paths do not
// collide; messaging.twilio.com's /v1/Services beside trunking's /v1/Trunks), Basic auth, form bodies, the request log and fault injection.
// Route modules register [method, path regex, handler]; a handler gets a
// context and returns {status, body} (body: object or ready JSON string) or
// throws a TwilioError.

const http = require('http');
const { State } = require('./state');
const { TwilioError, err, notFound } = require('./errors');
const { takeFault } = require('./faults');

class Emulator {
  constructor(opts) {
    this.state = new State(opts);
    this.routes = [];
    this.controls = [];
    this.hung = new Set();
    this.authCache = new Map();
    for (const mod of ['api2010', 'pricing', 'trunking', 'hosted', 'addresses', 'regulatory', 'messaging']) {
      require(`./routes/${mod}`)(this);
    }
    require('./routes/controls')(this);
    this.server = http.createServer({ keepAliveTimeout: 65000 }, (req, res) => this.handle(req, res));
    this.server.headersTimeout = 70000;
  }

  route(method, re, handler) {
    this.routes.push({ method, re, handler });
  }

  control(method, re, handler) {
    this.controls.push({ method, re, handler });
  }

  listen(port, host) {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve(this.server.address().port));
    });
  }

  close() {
    for (const sock of this.hung) sock.destroy();
    this.server.closeAllConnections && this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  handle(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      this.serve(req, res, chunks.length ? Buffer.concat(chunks).toString('utf8') : '').catch((e) => {
        process.stderr.write(`twilio-emulator: internal error: ${e.stack}\n`);
        if (!res.headersSent) this.send(res, 500, err(500, 20500, 'Internal Server Error').body());
      });
    });
  }

  // Every reply carries the emulator's own time (its clock control moves it)
  // in its Date header, as Twilio's replies carry Twilio's: clients measure
  // the skew between the clocks from it.
  dateHeader() {
    return { Date: this.state.now().toUTCString() };
  }

  send(res, status, body, headers) {
    if (status === 204) {
      res.writeHead(204, { ...this.dateHeader(), ...headers });
      res.end();
      return;
    }
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(text),
      ...this.dateHeader(),
      ...headers,
    });
    res.end(text);
  }

  async serve(req, res, rawBody) {
    const qi = req.url.indexOf('?');
    const path = qi < 0 ? req.url : req.url.slice(0, qi);
    const query = new URLSearchParams(qi < 0 ? '' : req.url.slice(qi + 1));
    const ctype = req.headers['content-type'] || '';
    const form = new URLSearchParams(ctype.startsWith('application/x-www-form-urlencoded') ? rawBody : '');

    if (path.startsWith('/_emulator/')) return this.serveControl(req, res, path, rawBody);

    const state = this.state;
    const t0 = process.hrtime.bigint();
    // Twilio's account concurrency limit: a request is in flight from its
    // arrival until its reply is sent (or its connection closes); every reply
    // says how many were, this one included.
    const inFlight = ++state.inFlight;
    let counted = true;
    const done = () => {
      if (counted) {
        counted = false;
        state.inFlight--;
      }
    };
    res.once('finish', done);
    res.once('close', done);
    if (inFlight > state.maxInFlight) state.maxInFlight = inFlight;
    res.setHeader('Twilio-Concurrent-Requests', String(inFlight));
    const creds = this.credentials(req.headers.authorization);
    // Keep the log entry cheap on the hot path: raw query and form strings and
    // a timestamp, turned into the documented shape when the log is read.
    const entry = state.record({
      seq: 0, method: req.method, path, rawQuery: qi < 0 ? '' : req.url.slice(qi + 1), rawForm: form,
      auth_user: creds ? creds.user : null, status: null, twilio_code: null,
      startedMs: state.now().getTime(), ms: null, fault: null,
    });
    const finish = (status, code) => {
      entry.status = status;
      entry.twilio_code = code;
      entry.ms = Number(process.hrtime.bigint() - t0) / 1e6;
    };

    if (state.concurrencyLimit > 0 && inFlight > state.concurrencyLimit) {
      // refused before anything happens: no fault, no effect
      state.limited++;
      const e = err(429, 20429, `Too Many Requests: more than ${state.concurrencyLimit} concurrent requests`);
      finish(429, 20429);
      entry.fault = 'concurrency_limit';
      this.send(res, 429, e.body());
      return;
    }

    const fault = state.faults.length ? takeFault(state, req.method, path) : null;
    if (fault) {
      entry.fault = fault.action;
      if (fault.action === 'reset_before') {
        finish(null, null);
        req.socket.destroy();
        return;
      }
      if (fault.action === 'hang') {
        this.hung.add(req.socket);
        req.socket.once('close', () => this.hung.delete(req.socket));
        return;
      }
      if (fault.action === 'latency') await new Promise((r) => setTimeout(r, fault.ms));
      if (fault.action === 'status') {
        const e = err(fault.status, fault.code, `Injected fault: HTTP ${fault.status}`);
        const headers = fault.retry_after !== null ? { 'Retry-After': String(fault.retry_after) } : {};
        finish(fault.status, fault.code);
        this.send(res, fault.status, e.body(), headers);
        return;
      }
    }

    const { status, body, headers } = this.dispatch(req, path, query, form, creds);
    finish(status, status >= 400 && body && typeof body === 'object' ? body.code : null);

    if (fault && fault.action === 'reset_after') {
      req.socket.destroy(); // the request took effect; its reply is lost
      return;
    }
    if (fault && (fault.action === 'malformed' || fault.action === 'truncate')) {
      const text = status === 204 ? '' : typeof body === 'string' ? body : JSON.stringify(body);
      if (fault.action === 'malformed') {
        this.send(res, status === 204 ? 200 : status, `${text.slice(0, -1)}<!-- malformed -->`, headers);
      } else {
        res.writeHead(status === 204 ? 200 : status, {
          'Content-Type': 'application/json; charset=utf-8',
          'Content-Length': Buffer.byteLength(text), // promises the whole body, sends half
          ...this.dateHeader(),
          ...headers,
        });
        res.write(text.slice(0, Math.floor(text.length / 2)));
        setImmediate(() => req.socket.destroy());
      }
      return;
    }
    this.send(res, status, body, headers);
  }

  credentials(header) {
    if (!header) return null;
    let c = this.authCache.get(header);
    if (c === undefined) {
      c = null;
      const m = /^Basic\s+(\S+)$/i.exec(header);
      if (m) {
        const text = Buffer.from(m[1], 'base64').toString('utf8');
        const i = text.indexOf(':');
        if (i > 0) c = { user: text.slice(0, i), pass: text.slice(i + 1) };
      }
      if (this.authCache.size > 1000) this.authCache.clear();
      this.authCache.set(header, c);
    }
    return c;
  }

  dispatch(req, path, query, form, creds) {
    const host = req.headers.host || '127.0.0.1';
    try {
      const principal = creds && this.state.authenticate(creds.user, creds.pass);
      if (!principal) {
        const e = err(401, 20003, 'Authenticate');
        return { status: 401, body: e.body(), headers: { 'WWW-Authenticate': 'Basic realm="Twilio API"' } };
      }
      let pathMatched = false;
      for (const r of this.routes) {
        const m = r.re.exec(path);
        if (!m) continue;
        pathMatched = true;
        if (r.method !== req.method) continue;
        const ctx = {
          state: this.state, inv: this.state.inventory, principal, path, query, form,
          params: m.groups || {}, base: `http://${host}`, url: req.url,
          q: (name) => query.get(name), f: (name) => form.get(name),
        };
        const out = r.handler(ctx);
        return { status: out.status || 200, body: out.body, headers: out.headers };
      }
      if (pathMatched) throw err(405, 20004, `Method ${req.method} not allowed on ${path}`);
      throw notFound(path);
    } catch (e) {
      if (!(e instanceof TwilioError)) throw e;
      return { status: e.status, body: e.body() };
    }
  }

  serveControl(req, res, path, rawBody) {
    let json = {};
    if (rawBody.trim()) {
      try {
        json = JSON.parse(rawBody);
      } catch (e) {
        return this.send(res, 400, { error: `body is not JSON: ${e.message}` });
      }
    }
    for (const c of this.controls) {
      const m = c.re.exec(path);
      if (!m || c.method !== req.method) continue;
      try {
        const out = c.handler({ state: this.state, json, params: m.groups || {}, emulator: this });
        return this.send(res, out.status || 200, out.body === undefined ? {} : out.body);
      } catch (e) {
        if (e instanceof TwilioError) return this.send(res, e.status, { error: e.message, ...e.body() });
        throw e;
      }
    }
    return this.send(res, 404, { error: `no emulator control ${req.method} ${path}` });
  }
}

module.exports = { Emulator };
