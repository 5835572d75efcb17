#!/usr/bin/env node
// Flint's Node.js runtime: one instance serving one function, following the
// runtime contract (docs/runtime-contract.md) with the standard library only.
//
//   FLINT_LISTEN=fd:N (or unix:/path, tcp:HOST:PORT)
//   GET  /healthz                                   200 once ready
//   POST /v2/specialize {"filepath", "functionName"} load the function, once
//   anything else                                   an invocation
//
// functionName is "file.func" ("main" in the file given, by default). The
// function gets a context {request: {method, path, query, headers, body,
// text(), json(), params}, publish(topic, body, {headers, msgId})} and returns, or resolves to, an object of only
// {status, headers, body}, or a body (a string, a Buffer, or anything else,
// sent as JSON). A status outside 200-599, a header name that is not a
// token, a value with a control character, or a Content-Length or
// Transfer-Encoding header (the runtime frames the body) is a 500 naming what
// is wrong, and the instance goes on serving.
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');

const MAX_BODY = Number(process.env.FLINT_MAX_BODY || 64 * 1024 * 1024);

let fn = null;
let fnName = null;

// Publish body to topic through flintd's socket in the sandbox
// (FLINT_PUBLISH; docs/runtime-contract.md, "Publishing to topics"): a
// promise of the answer {topic, seq, duplicate} once the message is
// durable, rejected with an Error carrying status, code and error (403
// topic_not_allowed: a topic the spec's publishes does not list).
function publish(topic, body, options = {}) {
  return new Promise((resolve, reject) => {
    const where = process.env.FLINT_PUBLISH || '';
    if (!where.startsWith('unix:')) {
      const e = new Error('FLINT_PUBLISH is not set: this instance cannot publish');
      e.status = 0;
      e.code = 'no_publish_socket';
      return reject(e);
    }
    const data = Buffer.isBuffer(body) ? body : Buffer.from(body === undefined ? '' : String(body));
    const headers = Object.assign({}, options.headers || {}, { 'Content-Length': data.length });
    if (options.msgId !== undefined) headers['X-Flint-Message-Id'] = String(options.msgId);
    const req = http.request({
      socketPath: where.slice(5),
      method: 'POST',
      path: `/topics/${encodeURIComponent(String(topic))}/messages`,
      headers,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        let answer = null;
        try { answer = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null'); } catch (e) { /* not JSON */ }
        if (res.statusCode === 202) return resolve(answer);
        const error = (answer && answer.error) || {};
        const e = new Error(`publish failed: ${res.statusCode} ${error.code || ''}: ${error.message || ''}`);
        e.status = res.statusCode;
        e.code = error.code;
        e.error = error;
        reject(e);
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

function send(res, status, headers, body) {
  res.writeHead(status, Object.assign({ 'Content-Length': Buffer.byteLength(body) }, headers));
  res.end(body);
}

function error(res, status, code, message) {
  send(res, status, { 'Content-Type': 'application/json' },
    JSON.stringify({ error: { code, message } }));
}

function load(filepath, functionName) {
  if (!filepath || !fs.existsSync(filepath)) throw new Error(`filepath '${filepath}' does not exist`);
  const dot = (functionName || '').lastIndexOf('.');
  const modName = dot > 0 ? functionName.slice(0, dot) : '';
  const funcName = (dot >= 0 ? functionName.slice(dot + 1) : functionName) || 'main';
  let file = filepath;
  if (fs.statSync(filepath).isDirectory()) {
    if (!modName) throw new Error(`functionName '${functionName}' must be file.func for a directory`);
    file = path.join(filepath, modName.endsWith('.js') ? modName : `${modName}.js`);
    if (!fs.existsSync(file)) throw new Error(`module '${modName}' not found in '${filepath}'`);
  }
  let mod;
  try {
    mod = require(path.resolve(file));
  } catch (e) {
    if (e instanceof SyntaxError) {
      const where = (e.stack || '').split('\n')[0];
      throw new Error(`syntax error in ${path.basename(file)}: ${e.message} (${where})`);
    }
    throw new Error(`loading '${path.basename(file)}' failed: ${e.name}: ${e.message}`);
  }
  const f = typeof mod === 'function' && funcName === 'main' ? mod : mod[funcName];
  if (typeof f !== 'function') throw new Error(`module '${path.basename(file)}' has no function '${funcName}'`);
  return { f, name: `${path.basename(file, '.js')}.${funcName}` };
}

class InvalidResponse extends Error {}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

function checkHeaders(headers) {
  for (const [name, value] of Object.entries(headers)) {
    if (!TOKEN.test(name)) throw new InvalidResponse(`header name '${name}' is not a token`);
    for (const v of Array.isArray(value) ? value : [value]) {
      if (CONTROL.test(String(v))) {
        throw new InvalidResponse(`header '${name}' holds a control character`);
      }
    }
    const lower = name.toLowerCase();
    if (lower === 'content-length' || lower === 'transfer-encoding') {
      throw new InvalidResponse(`header '${name}' is the runtime's to set`);
    }
  }
}

function toResponse(result) {
  let status = 200;
  let headers = {};
  let body = result;
  // {status, headers, body} (those keys only) is a response; any other
  // object is data, sent as JSON
  const keys = result && typeof result === 'object' && !Buffer.isBuffer(result) &&
    !Array.isArray(result) ? Object.keys(result) : [];
  const isResponse = keys.length > 0 &&
    keys.every((k) => k === 'status' || k === 'headers' || k === 'body');
  if (isResponse) {
    status = result.status === undefined ? 200 : result.status;
    if (typeof status === 'string' && /^[0-9]+$/.test(status)) status = Number(status);
    if (typeof status !== 'number' || !Number.isInteger(status)) {
      throw new InvalidResponse(`status '${status}' is not a number`);
    }
    if (status < 200 || status > 599) {
      throw new InvalidResponse(`status ${status} is not from 200 to 599`);
    }
    headers = Object.assign({}, result.headers || {});
    checkHeaders(headers);
    body = result.body;
  }
  if (body === undefined || body === null) body = '';
  const has = (name) => Object.keys(headers).some((k) => k.toLowerCase() === name);
  if (Buffer.isBuffer(body)) {
    if (!has('content-type')) headers['Content-Type'] = 'application/octet-stream';
  } else if (typeof body === 'string') {
    if (!has('content-type')) headers['Content-Type'] = 'text/plain; charset=utf-8';
  } else {
    if (!has('content-type')) headers['Content-Type'] = 'application/json';
    body = JSON.stringify(body);
  }
  return { status, headers, body };
}

async function invoke(req, res, body) {
  const url = new URL(req.url, 'http://instance');
  const params = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (k.startsWith('x-flint-param-')) params[k.slice('x-flint-param-'.length)] = v;
  }
  const request = {
    method: req.method,
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    headers: req.headers,
    body,
    params,
    text: () => body.toString('utf8'),
    json: () => JSON.parse(body.length ? body.toString('utf8') : 'null'),
  };
  let out;
  try {
    out = toResponse(await fn({ request, publish }));
  } catch (e) {
    if (e instanceof InvalidResponse) {
      console.error(`${fnName} returned an invalid response: ${e.message}`);
      return error(res, 500, 'function_error', `${fnName} returned an invalid response: ${e.message}`);
    }
    console.error(e && e.stack ? e.stack : String(e));
    const type = e && e.name ? e.name : 'Error';
    const message = e && e.message !== undefined ? e.message : String(e);
    return error(res, 500, 'function_error', `${fnName} raised ${type}: ${message}`);
  }
  send(res, out.status, out.headers, out.body);
}

function specialize(res, body) {
  let spec;
  try {
    spec = JSON.parse(body.length ? body.toString('utf8') : '{}');
    if (!spec || typeof spec !== 'object' || Array.isArray(spec)) throw new Error('the body must be a JSON object');
  } catch (e) {
    return error(res, 400, 'bad_request', `specialize: ${e.message}`);
  }
  if (fn) return error(res, 409, 'already_specialized', `this instance already runs ${fnName}`);
  try {
    const loaded = load(spec.filepath, spec.functionName);
    fn = loaded.f;
    fnName = loaded.name;
  } catch (e) {
    return error(res, 400, 'specialize_failed', e.message);
  }
  console.log(`specialized ${fnName}`);
  send(res, 200, { 'Content-Type': 'application/json' }, JSON.stringify({ function: fnName }));
}

const server = http.createServer((req, res) => {
  const chunks = [];
  let size = 0;
  let tooBig = false;
  req.on('data', (c) => {
    size += c.length;
    if (size > MAX_BODY) tooBig = true;
    else chunks.push(c);
  });
  req.on('end', () => {
    if (tooBig) return error(res, 413, 'body_too_large', `the body is larger than ${MAX_BODY} bytes`);
    const body = Buffer.concat(chunks);
    const p = req.url.split('?')[0];
    if (p === '/healthz' && req.method === 'GET') {
      return send(res, 200, { 'Content-Type': 'application/json' }, '{"status":"ok"}');
    }
    if (p === '/v2/specialize' && req.method === 'POST') return specialize(res, body);
    if (!fn) return error(res, 503, 'not_specialized', 'this instance has no function loaded yet');
    invoke(req, res, body);
  });
});
server.keepAliveTimeout = 0; // the executor closes idle connections itself

const listen = process.env.FLINT_LISTEN || '';
if (listen.startsWith('fd:')) {
  server.listen({ fd: Number(listen.slice(3)) }); // a socket flintd bound and handed over
} else if (listen.startsWith('unix:')) {
  const sock = listen.slice(5);
  try { fs.unlinkSync(sock); } catch (e) { /* none there */ }
  server.listen(sock);
} else if (listen.startsWith('tcp:')) {
  const hp = listen.slice(4);
  const i = hp.lastIndexOf(':');
  server.listen(Number(hp.slice(i + 1)), hp.slice(0, i));
} else {
  console.error('flint node runtime: FLINT_LISTEN must be fd:N, unix:PATH or tcp:HOST:PORT');
  process.exit(2);
}
process.on('SIGTERM', () => server.close(() => process.exit(0)));
