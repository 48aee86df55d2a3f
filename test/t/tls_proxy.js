#!/usr/bin/env node
// tls_proxy.js — an HTTPS front for the emulator, for the TLS tests:
//   node tls_proxy.js CERT KEY http://127.0.0.1:EMUPORT
// prints "tls-proxy listening on https://localhost:PORT" when ready.
'use strict';
const fs = require('fs');
const http = require('http');
const https = require('https');

const [cert, key, target] = process.argv.slice(2);
const upstream = new URL(target);

const server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, (req, res) => {
  const fwd = http.request({
    host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers,
  }, (up) => {
    res.writeHead(up.statusCode, up.headers);
    up.pipe(res);
  });
  fwd.on('error', () => res.destroy());
  req.pipe(fwd);
});
server.listen(0, '127.0.0.1', () => {
  console.log(`tls-proxy listening on https://localhost:${server.address().port}`);
});
process.on('SIGTERM', () => process.exit(0));
