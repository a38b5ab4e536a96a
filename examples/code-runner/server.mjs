#!/usr/bin/env node
// A code-runner HTTP service: POST /run { "lang": "python" | "node" | "sh", "code": "...",
// "input"?: "..." } runs the snippet in a sandbox and answers { stdout, stderr, result }.
// Bounded everywhere: request bodies (64 KiB), sandboxes at once and waiting (Runner: 503 when
// full), time per run (2 s), output per stream (64 KiB: status OUTPUT_LIMIT), processes (rlimit),
// and a client that goes away aborts its run (AbortSignal). node:http only.
//
//   node examples/code-runner/server.mjs [--port 8080] [--concurrency 4] [--queue 16] [--pool 4]
//   curl -s localhost:8080/run -d '{"lang":"python","code":"print(6*7)"}'
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { Runner, RunnerError, setSpawnPool } from '@sbx/executor';
import { commands, policies } from './policies.mjs';

const MAX_BODY = 64 * 1024;

/** Starts the service; resolves to the listening http.Server. */
export async function startServer({
  port = 8080,
  host = '127.0.0.1',
  concurrency = 4,
  queue = 4 * concurrency,
  pool = 0,
  timeout = 2000,
  spawnPool = true,
} = {}) {
  // A warm spawn pool for the usual layout makes each sandbox start faster (0: off).
  if (pool > 0) setSpawnPool({ size: pool });
  const runner = new Runner({ concurrency, maxQueue: queue });

  const server = createServer(async (req, res) => {
    const reply = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && req.url === '/health')
      return reply(200, { active: runner.active, queued: runner.queued });
    if (req.method !== 'POST' || req.url !== '/run') return reply(404, { error: 'POST /run' });

    let job;
    try {
      job = JSON.parse(await readBody(req));
    } catch (err) {
      return reply(err.code === 'TOO_LARGE' ? 413 : 400, { error: err.message });
    }
    const command = commands[job?.lang];
    if (!command || typeof job.code !== 'string')
      return reply(400, { error: `lang must be one of ${Object.keys(commands).join(', ')}, code a string` });
    if (job.input !== undefined && typeof job.input !== 'string')
      return reply(400, { error: 'input must be a string' });

    // The client going away (closed connection) ends its sandbox, queued or running.
    const ac = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) ac.abort(new Error('client went away'));
    });
    const [file, args] = command(job.code);
    try {
      const out = await runner.run(file, args, {
        policy: policies[job.lang],
        input: job.input,
        timeout,
        maxBuffer: 64 * 1024,
        signal: ac.signal,
        limits: { rlimitNproc: 64, rlimitFsize: 1 << 20 },
        executor: { spawnPool },
      });
      // A Result is JSON-safe (violation arguments as decimal strings).
      reply(200, out);
    } catch (err) {
      if (err instanceof RunnerError && err.code === 'QUEUE_FULL') return reply(503, { error: 'busy, try again' });
      if (ac.signal.aborted) return; // nobody to answer
      reply(500, { error: err.message });
    }
  });
  await new Promise((resolve) => server.listen(port, host, resolve));
  return server;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (d) => {
      size += d.length;
      // Past the cap the rest is read and dropped (not kept), so that the 413 reaches the client.
      if (size > MAX_BODY)
        reject(Object.assign(new Error(`body larger than ${MAX_BODY} bytes`), { code: 'TOO_LARGE' }));
      else chunks.push(d);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '8080' },
      concurrency: { type: 'string', default: '4' },
      queue: { type: 'string' },
      pool: { type: 'string', default: '0' },
    },
  });
  const concurrency = Number(values.concurrency);
  const server = await startServer({
    port: Number(values.port),
    concurrency,
    queue: values.queue ? Number(values.queue) : 4 * concurrency,
    pool: Number(values.pool),
  });
  console.log(`code-runner listening on http://127.0.0.1:${server.address().port} (concurrency ${concurrency})`);
}
