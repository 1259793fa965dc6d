// Test support: the real gateway and ingest-sim binaries as child processes
// on a private Redis, a raw Redis publisher, JWTs and condition waits.
//
// Driven by services/gateway/tests/js_client.rs, which starts the Redis
// (crates/tickstream-testkit) and passes, in the environment:
//   REDIS_URL                    redis://127.0.0.1:PORT of that private Redis
//   TICKSTREAM_GATEWAY_BIN       path of the gateway binary under test
//   TICKSTREAM_INGEST_SIM_BIN    path of the ingest-sim binary
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import net from 'node:net';
import readline from 'node:readline';

/** How long any single expected condition may take. */
export const STEP = 10_000;

/** @param {string} name */
function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests through \`cargo test -p gateway --test js_client\``);
  return v;
}

/** A service binary running on its own port, restartable on the same port. */
export class Proc {
  /** @param {string} bin @param {Record<string,string>} env */
  constructor(bin, env) {
    this.bin = bin;
    this.env = env;
    /** @type {string[]} */
    this.logs = [];
    this.child = null;
    this.addr = '';
  }

  /** Starts it and resolves once it logs `Listening.` with its address. */
  async start(port = '0') {
    const env = {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: port,
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'info',
      RUST_LOG: '',
      ...this.env,
    };
    const child = spawn(this.bin, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.logs = [];
    const listening = new Promise((resolve, reject) => {
      const onLine = (/** @type {string} */ line) => {
        this.logs.push(line);
        if (this.logs.length > 500) this.logs.shift();
        if (!line.includes('Listening.')) return;
        try {
          const v = JSON.parse(line);
          resolve(v.fields?.addr ?? v.addr);
        } catch {
          // not a JSON line
        }
      };
      readline.createInterface({ input: child.stdout }).on('line', onLine);
      readline.createInterface({ input: child.stderr }).on('line', onLine);
      child.once('exit', (code) => reject(new Error(`${this.bin} exited (${code}) before listening:\n${this.logs.join('\n')}`)));
    });
    this.addr = /** @type {string} */ (await withTimeout(listening, 30_000, `${this.bin} to listen`));
    return this;
  }

  get port() {
    return this.addr.split(':').pop() ?? '0';
  }

  /** SIGKILL (a crash) and wait for the exit. */
  async kill() {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  /** Kill, then run the same binary on the same port (retrying while the port is still held). */
  async restart() {
    const port = this.port;
    await this.kill();
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        return await this.start(port);
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** @param {string} signal */
  signal(signal) {
    this.child?.kill(/** @type {NodeJS.Signals} */ (signal));
  }
}

/**
 * A gateway on the private Redis.
 * @param {Record<string,string>} [env] extra configuration
 */
export async function startGateway(env = {}) {
  const p = new Proc(need('TICKSTREAM_GATEWAY_BIN'), { REDIS_URL: need('REDIS_URL'), ...env });
  await p.start();
  return p;
}

/**
 * ingest-sim on the private Redis, publishing `symbols` fast.
 * @param {string} symbols comma-separated
 */
export async function startSim(symbols = 'BTCUSDT,ETHUSDT,SOLUSDT') {
  const p = new Proc(need('TICKSTREAM_INGEST_SIM_BIN'), {
    REDIS_URL: need('REDIS_URL'),
    SYMBOLS: symbols,
    TICKSTREAM_SIM__RATE: '40',
  });
  await p.start();
  return p;
}

/** @param {Proc} gw */
export function wsUrl(gw) {
  return `ws://${gw.addr}/ws`;
}

/**
 * Sends one command to the private Redis and resolves with its raw reply.
 * @param {string[]} args
 */
export function redis(args) {
  const url = new URL(need('REDIS_URL'));
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(url.port), url.hostname);
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      if (complete(buf)) {
        sock.end();
        resolve(buf);
      }
    });
    sock.on('error', reject);
    const enc = args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('');
    sock.write(`*${args.length}\r\n${enc}`);
  });
}

/** Whether a buffer holds one whole RESP reply (simple, integer, error, or bulk string). @param {string} buf */
function complete(buf) {
  if (!buf.endsWith('\r\n')) return false;
  if (buf[0] !== '$') return true;
  const n = Number(buf.slice(1, buf.indexOf('\r\n')));
  return n < 0 || Buffer.byteLength(buf) >= buf.indexOf('\r\n') + 2 + n + 2;
}

/** A string value from the private Redis, or null. @param {string} key */
export async function redisGet(key) {
  const reply = /** @type {string} */ (await redis(['GET', key]));
  if (reply.startsWith('$-1')) return null;
  return reply.slice(reply.indexOf('\r\n') + 2, -2);
}

/**
 * Publishes a tick as an ingestor would.
 * @param {string} symbol @param {number} seq @param {number} price
 */
export async function publishTick(symbol, seq, price) {
  const tick = { symbol, price, volume: 1.5, timestamp: new Date().toISOString(), source: 'test', seq };
  await redis(['PUBLISH', `ticks:${symbol}`, JSON.stringify(tick)]);
  return tick;
}

/**
 * Publishes any payload on a channel, as a producer (analytics service, ingestor) would.
 * @param {string} channel @param {any} payload
 */
export async function publish(channel, payload) {
  await redis(['PUBLISH', channel, JSON.stringify(payload)]);
  return payload;
}

/** How many Redis subscribers a channel has (the gateway subscribes on a client's first interest). @param {string} channel */
export async function numsub(channel) {
  const reply = /** @type {string} */ (await redis(['PUBSUB', 'NUMSUB', channel]));
  const m = reply.match(/:(\d+)\r\n$/);
  return m ? Number(m[1]) : 0;
}

/** An HS256 JWT signed with `secret`. @param {string} secret @param {Record<string, any>} claims */
export function jwt(secret, claims) {
  const b64 = (/** @type {any} */ o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  const sig = createHmac('sha256', secret).update(head).digest('base64url');
  return `${head}.${sig}`;
}

/**
 * Polls `cond` until it is truthy; rejects after `ms` naming `what`.
 * @template T
 * @param {() => T | Promise<T>} cond
 * @param {string} what
 * @param {number} [ms]
 * @returns {Promise<T>}
 */
export async function waitFor(cond, what, ms = STEP) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * @template T
 * @param {Promise<T>} p @param {number} ms @param {string} what
 * @returns {Promise<T>}
 */
export function withTimeout(p, ms, what) {
  /** @type {any} */
  let t;
  const timeout = new Promise((_, reject) => {
    t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}
