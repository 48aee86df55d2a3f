#!/usr/bin/env node
// reply_server.js — serves hand-written search replies, for the reply tests:
//   node reply_server.js DIR
// answers every request that has an AreaCode query parameter with the bytes
// of DIR/<AreaCode>.json as they are (200, application/json), anything else
// with 404; prints "reply-server listening on http://127.0.0.1:PORT" when
// ready.
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');

const dir = process.argv[2];

const server = http.createServer((req, res) => {
  const code = new URL(req.url, 'http://localhost').searchParams.get('AreaCode');
  let body = null;
  if (code && /^[0-9]{3}$/.test(code)) {
    try {
      body = fs.readFileSync(path.join(dir, `${code}.json`));
    } catch (e) {
      body = null;
    }
  }
  if (body === null) {
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end('{"code": 20404, "message": "not found", "status": 404}');
    return;
  }
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length });
  res.end(body);
});
server.listen(0, '127.0.0.1', () => {
  console.log(`reply-server listening on http://127.0.0.1:${server.address().port}`);
});
process.on('SIGTERM', () => process.exit(0));
