// Unit tests of what needs no browser: node --test clients/js/test/
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  createClient, refreshMargin, refreshDelay, backoffDelay, parseRetryAfter,
  tokenLifetime, replayable, signOutReason,
} from "../authclient.js";

const API = "https://api.example.com/api/v1";
let seq = 0;

// fakeServer answers the auth routes like authserver in cookie mode.
function fakeServer({ ttl = 1, offsetMs = 0 } = {}) {
  const srv = { refreshes: 0, calls: 0, refreshAnswer: null, delay: 0, current: null, revoked: false };
  const tokenFor = () => {
    const sid = "sid1";
    const payload = Buffer.from(JSON.stringify({ sid, n: ++seq })).toString("base64url");
    srv.current = "h." + payload + ".s";
    const iat = Math.floor((Date.now() + offsetMs) / 1000);
    return { access_token: srv.current, token_type: "Bearer", expires_in: ttl, iat, expires_at: iat + ttl, refresh_expires_in: 3600 };
  };
  const json = (status, body, headers = {}) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
  srv.fetch = async (input, init = {}) => {
    const url = String(input instanceof Request ? input.url : input);
    if (srv.delay) await new Promise((r) => setTimeout(r, srv.delay));
    if (url.endsWith("/auth/login")) {
      assert.equal(new Headers(init.headers).get("Content-Type"), "application/json");
      return json(200, tokenFor());
    }
    if (url.endsWith("/auth/refresh")) {
      srv.refreshes++;
      const h = new Headers(init.headers);
      assert.equal(h.get("Content-Type"), "application/json");
      assert.equal(h.get("X-Auth-Mode"), "cookie");
      if (srv.refreshAnswer) return srv.refreshAnswer();
      return json(200, tokenFor());
    }
    if (url.endsWith("/me")) return json(200, { user: { id: "1", email: "a@example.com" } });
    srv.calls++;
    const auth = new Headers(init.headers).get("Authorization");
    if (srv.revoked) return json(401, { error: { code: "token_revoked" } });
    if (auth !== "Bearer " + srv.current) return json(401, { error: { code: "token_expired" } });
    return json(200, { ok: true, auth });
  };
  return srv;
}

// fakeLocks is navigator.locks for tabs of one process.
function fakeLocks() {
  let held = null;
  const queue = [];
  const grant = () => {
    if (held || !queue.length) return;
    const w = queue.shift();
    held = w;
    Promise.resolve().then(() => w.cb({ name: "x" })).then(w.resolve, w.reject).finally(() => { if (held === w) held = null; grant(); });
  };
  return {
    request(name, opts, cb) {
      return new Promise((resolve, reject) => {
        if (opts.ifAvailable && held) return Promise.resolve(cb(null)).then(resolve, reject);
        const w = { cb, resolve, reject };
        if (opts.steal) { held = null; queue.unshift(w); grant(); return; }
        if (opts.signal) opts.signal.addEventListener("abort", () => {
          const i = queue.indexOf(w);
          if (i >= 0) { queue.splice(i, 1); reject(new DOMException("aborted", "AbortError")); }
        });
        queue.push(w);
        grant();
      });
    },
  };
}

const clients = [];
function client(srv, extra = {}) {
  const c = createClient({ baseUrl: API, fetch: srv.fetch, name: "t" + seq + (extra.tag || ""), ...extra });
  clients.push(c);
  return c;
}
test.afterEach(() => { while (clients.length) clients.pop().close(); });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test("margin, delay, back-off, Retry-After, lifetime", async (t) => {
  await t.test("margin is min(60 s, ttl/4)", () => {
    for (const [ttl, want] of [[5000, 1250], [900000, 60000], [240000, 60000], [200000, 50000]]) assert.equal(refreshMargin(ttl), want);
  });
  await t.test("proactive refresh 60-90 s before expiry, ttl/4-3ttl/8 for short tokens", () => {
    assert.equal(refreshDelay(900000, () => 0), 840000);
    assert.equal(refreshDelay(900000, () => 1), 810000);
    assert.equal(refreshDelay(5000, () => 0), 3750);
    assert.equal(refreshDelay(5000, () => 1), 3125);
  });
  await t.test("back-off doubles with jitter and stops near 60 s", () => {
    assert.equal(backoffDelay(1, () => 1), 1000);
    assert.equal(backoffDelay(1, () => 0), 500);
    assert.equal(backoffDelay(3, () => 1), 4000);
    assert.equal(backoffDelay(30, () => 1), 60000);
    assert.equal(backoffDelay(30, () => 0), 30000);
  });
  await t.test("Retry-After in seconds or as a date", () => {
    assert.equal(parseRetryAfter("7"), 7000);
    assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6000);
    assert.equal(parseRetryAfter(null), null);
    assert.equal(parseRetryAfter("soon"), null);
  });
  await t.test("lifetime from expires_in, checked against iat/expires_at", () => {
    assert.equal(tokenLifetime({ expires_in: 5 }), 5000);
    assert.equal(tokenLifetime({ expires_in: 900, iat: 100, expires_at: 105 }), 5000);
    assert.throws(() => tokenLifetime({}));
  });
  await t.test("reasons and replayable bodies", () => {
    assert.equal(signOutReason("refresh_token_reused"), "reused");
    assert.equal(signOutReason("token_expired"), "expired");
    assert.equal(signOutReason("token_revoked"), "revoked");
    assert.equal(replayable("/x", { body: "{}" }), true);
    assert.equal(replayable("/x", { body: new ReadableStream(), duplex: "half" }), false);
  });
});

test("concurrent getAccessToken calls in two tabs make one refresh, and the second tab adopts it", async () => {
  const srv = fakeServer({ ttl: 1 });
  const locks = fakeLocks();
  const a = client(srv, { locks, name: "shared1" });
  const b = client(srv, { locks, name: "shared1" });
  await a.signIn({ email: "a@example.com", password: "pw" });
  // Delivery between channels is asynchronous (slower for the first message in Node).
  for (let i = 0; i < 40 && b.state() !== "signed_in"; i++) await sleep(10);
  assert.equal(b.state(), "signed_in", "the sign-in reached the other tab");
  srv.delay = 30;
  await sleep(800); // past the margin (250 ms before expiry); the proactive timers race
  const before = srv.refreshes;
  const tokens = await Promise.all([a.getAccessToken(), b.getAccessToken(), a.getAccessToken(), b.getAccessToken()]);
  assert.equal(new Set(tokens).size, 1, "every call got the same token");
  assert.equal(tokens[0], srv.current);
  assert.ok(srv.refreshes - before <= 1, `refreshes ${srv.refreshes - before}`);
});

test("clock skew of ±10 min causes no refresh storm", async () => {
  for (const offset of [-600000, 600000]) {
    const srv = fakeServer({ ttl: 1 });
    const c = client(srv, { now: () => Date.now() + offset, tag: "skew" + offset });
    await c.signIn({ email: "a@example.com", password: "pw" });
    const start = srv.refreshes;
    const end = Date.now() + 2100;
    while (Date.now() < end) {
      const r = await c.fetch(API + "/things");
      assert.equal(r.status, 200);
      await sleep(50);
    }
    const n = srv.refreshes - start;
    assert.ok(n >= 1 && n <= 5, `offset ${offset}: ${n} refreshes in 2.1 TTLs, want at most 2 per TTL`);
  }
});

test("fetch attaches the bearer only to the API's origin and extraOrigins", async () => {
  const srv = fakeServer({ ttl: 60 });
  const seen = [];
  const f = async (input, init = {}) => {
    const url = String(input instanceof Request ? input.url : input);
    if (!url.startsWith(API)) { seen.push([url, new Headers(init.headers).get("Authorization")]); return new Response("{}"); }
    return srv.fetch(input, init);
  };
  const c = createClient({ baseUrl: API, fetch: f, extraOrigins: ["https://files.example.com"], name: "origins" });
  clients.push(c);
  await c.signIn({ email: "a@example.com", password: "pw" });
  await c.fetch("https://evil.example.com/x");
  await c.fetch("https://files.example.com/y");
  await c.fetch("https://api.example.com.evil.example/z");
  assert.deepEqual(seen, [
    ["https://evil.example.com/x", null],
    ["https://files.example.com/y", "Bearer " + srv.current],
    ["https://api.example.com.evil.example/z", null],
  ]);
});

test("a 401 token_expired refreshes and retries once; a stream body is not retried", async () => {
  const srv = fakeServer({ ttl: 60 });
  const c = client(srv);
  await c.signIn({ email: "a@example.com", password: "pw" });
  const stale = srv.current;
  srv.current = "rotated-elsewhere"; // the server no longer accepts the token
  let r = await c.fetch(API + "/things", { method: "POST", body: "{}" });
  assert.equal(r.status, 200, "retried with a refreshed token");
  assert.notEqual((await r.json()).auth, "Bearer " + stale);
  srv.current = "again";
  const before = srv.calls;
  r = await c.fetch(API + "/things", { method: "POST", body: new ReadableStream({ start(ctl) { ctl.close(); } }), duplex: "half" });
  assert.equal(r.status, 401, "a stream body is answered, not replayed");
  assert.equal(srv.calls - before, 1);
});

test("a 401 from refresh signs every tab out with its reason; network errors and 5xx do not", async () => {
  const srv = fakeServer({ ttl: 1 });
  const locks = fakeLocks();
  const a = client(srv, { locks, name: "so" });
  const b = client(srv, { locks, name: "so" });
  const events = { a: [], b: [] };
  a.on("SIGNED_OUT", (e) => events.a.push(e));
  b.on("SIGNED_OUT", (e) => events.b.push(e));
  await a.signIn({ email: "a@example.com", password: "pw" });
  for (let i = 0; i < 40 && b.state() !== "signed_in"; i++) await sleep(10);

  // The server is down: back-off, no sign-out; expired means stale.
  srv.refreshAnswer = () => new Response("{}", { status: 503 });
  await sleep(1100);
  await assert.rejects(a.getAccessToken());
  assert.equal(a.state(), "stale");
  assert.deepEqual(events.a, []);

  // 429 with Retry-After: nothing is asked before it passes.
  srv.refreshAnswer = () => new Response("{}", { status: 429, headers: { "Retry-After": "30" } });
  const n = srv.refreshes;
  a.getAccessToken().catch(() => {});
  await sleep(20);
  await a.getAccessToken().catch(() => {});
  await a.getAccessToken().catch(() => {});
  assert.ok(srv.refreshes - n <= 1, "Retry-After was not honoured");

  // Reuse detected: final, in every tab.
  srv.refreshAnswer = () => new Response(JSON.stringify({ error: { code: "refresh_token_reused" } }), { status: 401 });
  globalThis.dispatchEvent?.(new Event("online"));
  await b.signOut({ scope: "this" }).catch(() => {});
  for (let i = 0; i < 40 && a.state() !== "signed_out"; i++) await sleep(10);
  await sleep(10);
  assert.equal(a.state(), "signed_out");
  assert.equal(b.state(), "signed_out");
  assert.equal(await a.getAccessToken(), null);
  assert.deepEqual(events.a.map((e) => e.reason), ["other_tab"]);
  assert.deepEqual(events.b.map((e) => e.reason), ["user"]);
});

test("a revoked token seen by one call signs out after one refresh attempt", async () => {
  const srv = fakeServer({ ttl: 60 });
  const c = client(srv);
  const reasons = [];
  c.on("SIGNED_OUT", (e) => reasons.push(e.reason));
  await c.signIn({ email: "a@example.com", password: "pw" });
  srv.revoked = true;
  srv.refreshAnswer = () => new Response(JSON.stringify({ error: { code: "token_revoked" } }), { status: 401 });
  const r = await c.fetch(API + "/things");
  assert.equal(r.status, 401);
  await sleep(10);
  assert.deepEqual(reasons, ["revoked"]);
  assert.equal(c.state(), "signed_out");
});

test("restore: a 401 means signed out without SIGNED_OUT; mfa_required is handed to the app", async () => {
  const srv = fakeServer({ ttl: 60 });
  srv.refreshAnswer = () => new Response(JSON.stringify({ error: { code: "token_invalid" } }), { status: 401 });
  const c = client(srv);
  const seen = [];
  c.on("SIGNED_OUT", () => seen.push("out"));
  c.on("INITIAL_SESSION", (e) => seen.push(e.state));
  assert.equal(await c.restore(), "signed_out");
  await sleep(5);
  assert.deepEqual(seen, ["signed_out"]);
  assert.equal(srv.refreshes, 1, "restore asks the server once");

  const mfa = createClient({ baseUrl: API, name: "mfa", fetch: async () => new Response(JSON.stringify({ mfa_required: true, mfa_token: "m", factors: ["totp"] })) });
  clients.push(mfa);
  assert.deepEqual(await mfa.signIn({ email: "a@example.com", password: "pw" }), { mfaRequired: true, mfaToken: "m", factors: ["totp"] });
  assert.equal(mfa.state(), "signed_out");
});
