// authclient.js: the browser client of authserver. One ES module, no
// dependencies. It keeps one session per origin alive across every tab:
// one refresh at a time through Web Locks, the new token shared over
// BroadcastChannel, sign-out and revocation seen by every tab, expiry
// measured from receipt (never from the local clock alone), proactive
// refresh with jitter, back-off on network errors. See docs/client-js.md.

const SECOND = 1000;
const MAX_MARGIN = 60 * SECOND;
const MAX_BACKOFF = 60 * SECOND;
const CSRF_HEADER = "X-Requested-With";
const CSRF_VALUE = "authserver-client";

/** Margin kept before expiry: min(60 s, a quarter of the lifetime). */
export function refreshMargin(ttlMs) {
  return Math.min(MAX_MARGIN, ttlMs / 4);
}

/**
 * When, in ms from receipt, the proactive refresh of a token of ttlMs
 * starts: at the margin plus up to half the margin of jitter (60–90 s
 * before expiry for long tokens, 1/4–3/8 of the lifetime for short ones).
 */
export function refreshDelay(ttlMs, random = Math.random) {
  const m = refreshMargin(ttlMs);
  return Math.max(0, ttlMs - m - random() * (m / 2));
}

/** Back-off after the n-th failure in a row (n ≥ 1): exponential from 1 s, capped, with jitter. */
export function backoffDelay(n, random = Math.random) {
  const cap = Math.min(MAX_BACKOFF, SECOND * 2 ** Math.min(n - 1, 16));
  return cap / 2 + random() * (cap / 2);
}

/** Retry-After (seconds or an HTTP date) in ms; null when absent or unreadable. */
export function parseRetryAfter(value, nowMs = Date.now()) {
  if (value == null || value === "") return null;
  const s = String(value).trim();
  if (/^\d+$/.test(s)) return Math.min(Number(s) * SECOND, 24 * 3600 * SECOND);
  const t = Date.parse(s);
  if (Number.isNaN(t)) return null;
  return Math.max(0, t - nowMs);
}

/**
 * The lifetime of a token answer in ms, measured from its receipt:
 * expires_in, checked against the server's iat/expires_at (whichever is
 * shorter), never the local clock's idea of the absolute time.
 */
export function tokenLifetime(body) {
  let ttl = Number(body.expires_in) * SECOND;
  if (Number.isFinite(body.iat) && Number.isFinite(body.expires_at) && body.expires_at > body.iat) {
    ttl = Math.min(ttl, (body.expires_at - body.iat) * SECOND);
  }
  if (!Number.isFinite(ttl) || ttl <= 0) throw new AuthError("bad_answer", "the server answered no expires_in");
  return ttl;
}

/** The claims of a JWT, unverified (the server verifies; this reads sid). */
export function jwtClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part + "===".slice((part.length + 3) % 4)));
  } catch {
    return {};
  }
}

/** Whether a request body can be sent twice. */
export function replayable(input, init) {
  const body = init && init.body;
  if (body != null) {
    if (typeof ReadableStream !== "undefined" && body instanceof ReadableStream) return false;
    return true;
  }
  if (typeof Request !== "undefined" && input instanceof Request) {
    return !input.bodyUsed && (input.body == null || !(init && init.duplex));
  }
  return true;
}

/** Maps the error code of a refused refresh to a SIGNED_OUT reason. */
export function signOutReason(code) {
  switch (code) {
    case "refresh_token_reused":
      return "reused";
    case "token_expired":
      return "expired";
    default:
      return "revoked";
  }
}

export class AuthError extends Error {
  constructor(code, message, status) {
    super(message || code);
    this.name = "AuthError";
    this.code = code;
    this.status = status;
  }
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function randomId() {
  return Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
}

async function errorCode(res) {
  try {
    const b = await res.clone().json();
    return (b && b.error && b.error.code) || "";
  } catch {
    return "";
  }
}

/**
 * createClient builds the client of one API.
 * @param {object} o
 * @param {string} o.baseUrl the API's mount point, e.g. "https://auth.example.com/api/v1" or "/api/v1"
 * @param {"cookie"|"body"} [o.mode] where the refresh token lives (default cookie)
 * @param {string[]} [o.extraOrigins] other origins that get the bearer in fetch
 */
export function createClient(o) {
  if (!o || typeof o.baseUrl !== "string") throw new TypeError("createClient: baseUrl is required");
  const mode = o.mode || "cookie";
  if (mode !== "cookie" && mode !== "body") throw new TypeError("createClient: mode must be 'cookie' or 'body'");
  const g = globalThis;
  const here = g.location && g.location.href;
  const base = new URL(o.baseUrl.replace(/\/+$/, "") + "/", here);
  const apiOrigin = base.origin;
  const origins = new Set([apiOrigin, ...(o.extraOrigins || []).map((x) => new URL(x).origin)]);
  const doFetch = o.fetch || ((...a) => g.fetch(...a));
  const now = o.now || (() => Date.now());
  const random = o.random || Math.random;
  const locks = o.locks !== undefined ? o.locks : g.navigator && g.navigator.locks;
  const Channel = o.BroadcastChannel !== undefined ? o.BroadcastChannel : g.BroadcastChannel;
  const lockTimeout = o.lockTimeoutMs || 10 * SECOND;
  const settleMs = o.settleMs || 150;
  const storage = mode === "body" ? o.storage || null : null;
  const name = o.name || "authserver:" + base.href;
  const tabId = randomId();
  const credentials = mode === "cookie" ? "include" : "omit";

  // The committed state. session: {access, refresh?, expiresAt, ttl, sid}
  // in this tab's clock (now()); expiresAt is receipt + lifetime.
  let session = null;
  let hadSession = false;
  let stale = false;
  let failures = 0;
  let blockedUntil = 0; // back-off or Retry-After, in now()
  let inflight = null;
  let restoring = null;
  let timer = null;
  let retryTimer = null;
  let localChain = Promise.resolve();
  const deadSids = new Set();
  const listeners = new Map();
  let closed = false;

  const channel = Channel ? new Channel(name) : null;
  const waiters = new Set(); // resolved on every adopted token

  function emit(event, payload) {
    const set = listeners.get(event);
    if (!set) return;
    for (const cb of [...set]) {
      // After the commit, outside any lock, never awaited.
      queueMicrotask(() => {
        try {
          cb(payload);
        } catch (e) {
          if (g.reportError) g.reportError(e);
          else setTimeout(() => { throw e; });
        }
      });
    }
  }

  function post(msg) {
    if (channel && !closed) channel.postMessage({ ...msg, from: tabId });
  }

  function remaining() {
    return session ? session.expiresAt - now() : -Infinity;
  }

  function fresh() {
    return session && remaining() > refreshMargin(session.ttl);
  }

  function schedule() {
    clearTimeout(timer);
    timer = null;
    if (!session || closed) return;
    const delay = Math.max(0, session.expiresAt - (session.ttl - refreshDelay(session.ttl, random)) - now());
    const token = session.access;
    timer = setTimeout(() => {
      timer = null;
      if (session && session.access === token) refresh(token).catch(() => {});
    }, delay);
  }

  // commit adopts a session: the one place state changes to signed in.
  function commit(next, event) {
    const was = session;
    session = next;
    hadSession = true;
    stale = false;
    failures = 0;
    blockedUntil = 0;
    clearTimeout(retryTimer);
    schedule();
    for (const w of waiters) w();
    emit(event || (was ? "TOKEN_REFRESHED" : "SIGNED_IN"), { accessToken: next.access, expiresIn: Math.round(remaining() / SECOND) });
  }

  function fromAnswer(body, sentAt) {
    const ttl = tokenLifetime(body);
    const access = String(body.access_token || "");
    if (!access) throw new AuthError("bad_answer", "the server answered no access_token");
    const s = { access, ttl, expiresAt: sentAt + ttl, sid: jwtClaims(access).sid || "" };
    if (mode === "body") {
      s.refresh = body.refresh_token || (session && session.refresh);
      if (storage && s.refresh) storage.setItem(name, s.refresh);
    }
    if (Number.isFinite(body.iat)) s.skew = body.iat * SECOND - sentAt;
    return s;
  }

  function share(kind) {
    if (!session) return;
    post({ t: "tokens", kind, access: session.access, refresh: session.refresh, ttl: session.ttl, left: remaining(), sid: session.sid });
  }

  function signOutLocal(reason, broadcast, cause) {
    clearTimeout(timer);
    clearTimeout(retryTimer);
    const was = session;
    if (was && was.sid) deadSids.add(was.sid);
    session = null;
    stale = false;
    failures = 0;
    blockedUntil = 0;
    if (storage) storage.removeItem(name);
    if (broadcast) post({ t: "signed_out", reason, sid: was && was.sid });
    for (const w of waiters) w();
    if (was || hadSession) {
      hadSession = false;
      emit("SIGNED_OUT", cause ? { reason, cause } : { reason });
    }
  }

  function onMessage(ev) {
    const m = ev.data;
    if (!m || m.from === tabId || closed) return;
    if (m.t === "tokens") {
      if (deadSids.has(m.sid) && !(m.kind === "signin")) return;
      const expiresAt = now() + Number(m.left);
      if (session && (session.access === m.access || (session.sid === m.sid && expiresAt <= session.expiresAt))) return;
      if (m.kind === "signin") deadSids.delete(m.sid);
      const next = { access: m.access, ttl: m.ttl, expiresAt, sid: m.sid };
      if (mode === "body") next.refresh = m.refresh;
      commit(next, session ? "TOKEN_REFRESHED" : "SIGNED_IN");
    } else if (m.t === "signed_out") {
      if (m.sid) deadSids.add(m.sid);
      if (session && (!m.sid || m.sid === session.sid)) signOutLocal("other_tab", false, m.reason);
    } else if (m.t === "hello") {
      if (fresh()) share("hello");
    }
  }
  if (channel) channel.onmessage = onMessage;

  // waitForToken resolves when a token is adopted or ms pass.
  function waitForToken(ms) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        waiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      waiters.add(done);
    });
  }

  // withLock runs fn holding the refresh lock of every tab of the origin.
  // A tab that cannot get it within lockTimeout (its holder is frozen or
  // hung) steals it: the server's reuse grace covers the overlap.
  async function withLock(fn) {
    if (!locks) {
      const run = localChain.then(() => fn(false));
      localChain = run.catch(() => {});
      return run;
    }
    let waited = false;
    const first = await locks.request(name + ":refresh", { ifAvailable: true }, async (lock) => (lock ? { v: await fn(false) } : null));
    if (first) return first.v;
    waited = true;
    const ac = new AbortController();
    const t = setTimeout(() => ac.abort(), lockTimeout);
    let granted = false;
    try {
      return await locks.request(name + ":refresh", { signal: ac.signal }, async () => {
        granted = true;
        clearTimeout(t);
        return fn(waited);
      });
    } catch (e) {
      if (granted || !e || e.name !== "AbortError") throw e;
      return locks.request(name + ":refresh", { steal: true }, async () => fn(waited));
    } finally {
      clearTimeout(t);
    }
  }

  async function authFetch(path, init, sentAt) {
    const headers = { "Content-Type": "application/json", "X-Auth-Mode": mode, ...(init.headers || {}) };
    const ac = new AbortController();
    const t = setTimeout(() => ac.abort(), lockTimeout);
    try {
      return await doFetch(new URL(path, base).href, { method: "POST", credentials, cache: "no-store", ...init, headers, signal: ac.signal });
    } finally {
      clearTimeout(t);
    }
  }

  function backoff(res, err) {
    failures++;
    let delay = backoffDelay(failures, random);
    if (res && res.status === 429) {
      const ra = parseRetryAfter(res.headers.get("Retry-After"), now());
      if (ra != null) delay = ra;
    }
    blockedUntil = now() + delay;
    if (remaining() <= 0 || !session) stale = true;
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => {
      if (session || restoring || stale) refresh(session && session.access, { retry: true }).catch(() => {});
    }, delay);
    return new AuthError(res ? (res.status === 429 ? "rate_limited" : "server_error") : "network_error",
      err ? String(err.message || err) : "refresh failed with " + (res && res.status), res && res.status);
  }

  // serverRefresh asks the server, holding the lock. It returns true when
  // a session was committed, false when signed out; throws on a transient failure.
  async function serverRefresh(restore) {
    let body = {};
    if (mode === "body") {
      const rt = (session && session.refresh) || (storage && storage.getItem(name));
      if (!rt) {
        if (session) signOutLocal("expired", true);
        return false;
      }
      body = { refresh_token: rt };
    }
    const sentAt = now();
    let res;
    try {
      res = await authFetch("auth/refresh", { body: JSON.stringify(body), headers: { [CSRF_HEADER]: CSRF_VALUE } });
    } catch (e) {
      throw backoff(null, e);
    }
    if (res.ok) {
      const next = fromAnswer(await res.json(), sentAt);
      const was = session;
      commit(next, was ? "TOKEN_REFRESHED" : "SIGNED_IN");
      share(was ? "refresh" : "signin");
      return true;
    }
    if (res.status === 429 || res.status >= 500) throw backoff(res);
    const code = await errorCode(res);
    if (res.status === 401 || (res.status === 400 && code === "invalid_request")) {
      // Final: the login is over (401), or there is no cookie to refresh with (400).
      if (session || !restore) signOutLocal(res.status === 400 ? "expired" : signOutReason(code), true);
      return false;
    }
    throw new AuthError(code || "refresh_failed", "refresh answered " + res.status, res.status);
  }

  // refresh makes the current token fresh. staleToken is the token the
  // caller found wanting: after the lock, a tab that sees another token
  // (another tab refreshed) adopts it instead of refreshing again.
  function refresh(staleToken, opts = {}) {
    if (inflight) return inflight;
    inflight = (async () => {
      try {
        return await withLock(async (waited) => {
          if (closed) return false;
          // A token the server refused may be one another tab just
          // replaced: give its message a moment before refreshing again.
          if ((waited || opts.force) && session && session.access === staleToken) await waitForToken(settleMs);
          if (session && session.access !== staleToken && fresh()) return true;
          if (!session && !opts.restore && !opts.retry) return false;
          return serverRefresh(opts.restore);
        });
      } finally {
        inflight = null;
      }
    })();
    return inflight;
  }

  async function getAccessToken() {
    if (restoring) await restoring;
    if (!session && !stale) return null;
    if (fresh()) return session.access;
    if (blockedUntil > now()) {
      if (session && remaining() > 0) return session.access;
      stale = true;
      throw new AuthError("unavailable", "the server cannot be reached; the session is kept");
    }
    const token = session && session.access;
    try {
      await refresh(token, { retry: !session });
    } catch (e) {
      if (session && remaining() > 0) return session.access;
      throw e;
    }
    return session ? session.access : null;
  }

  function wantsBearer(url) {
    try {
      return origins.has(new URL(url, here || base.href).origin);
    } catch {
      return false;
    }
  }

  function underBase(url) {
    try {
      return new URL(url, here || base.href).href.startsWith(base.href);
    } catch {
      return false;
    }
  }

  async function clientFetch(input, init = {}) {
    const url = typeof input === "string" || input instanceof URL ? String(input) : input.url;
    if (!wantsBearer(url)) return doFetch(input, init);
    const canReplay = replayable(input, init);
    const original = typeof Request !== "undefined" && input instanceof Request && canReplay ? input.clone() : null;
    const send = async (req) => {
      const token = await getAccessToken().catch((e) => {
        if (e instanceof AuthError && e.code === "unavailable") throw new TypeError("Failed to fetch: " + e.message);
        throw e;
      });
      const headers = new Headers(init.headers || (req instanceof Request ? req.headers : undefined));
      if (token && !headers.has("Authorization")) headers.set("Authorization", "Bearer " + token);
      // A password change through fetch answers in this client's mode too.
      if (underBase(url) && !headers.has("X-Auth-Mode")) headers.set("X-Auth-Mode", mode);
      return { token, res: await doFetch(req, { ...init, headers }) };
    };
    const first = await send(input);
    if (first.res.status !== 401 || !first.token) return first.res;
    const code = await errorCode(first.res);
    if (code !== "token_expired" && code !== "token_revoked" && code !== "token_invalid") return first.res;
    // The token it sent was refused. If it is still the current one,
    // refresh (a revoked login ends there, with SIGNED_OUT); then retry once.
    if (session && session.access === first.token) {
      try {
        await refresh(first.token, { force: true });
      } catch {
        return first.res;
      }
    }
    if (!session || session.access === first.token || !canReplay) return first.res;
    if (init.signal && init.signal.aborted) throw init.signal.reason || new DOMException("Aborted", "AbortError");
    return (await send(original || input)).res;
  }

  async function jsonCall(path, body, extraHeaders) {
    const res = await authFetch(path, { body: JSON.stringify(body), headers: extraHeaders || {} });
    let data = null;
    try {
      data = await res.json();
    } catch {}
    if (!res.ok) {
      const code = (data && data.error && data.error.code) || "http_" + res.status;
      throw new AuthError(code, (data && data.error && data.error.message) || "request failed", res.status);
    }
    return data;
  }

  async function signIn({ email, password, deviceName }) {
    const sentAt = now();
    const data = await jsonCall("auth/login", { email, password, device_name: deviceName || "" });
    if (data && data.mfa_required) {
      return { mfaRequired: true, mfaToken: data.mfa_token, factors: data.factors || [] };
    }
    const next = fromAnswer(data, sentAt);
    if (session && session.sid !== next.sid) signOutLocal("user", true);
    deadSids.delete(next.sid);
    commit(next, "SIGNED_IN");
    share("signin");
    const me = await clientFetch(new URL("me", base).href, { credentials: "omit" });
    const user = me.ok ? (await me.json()).user : null;
    return { user };
  }

  async function signUp({ email, password }) {
    const data = await jsonCall("auth/register", { email, password });
    return { user: data.user };
  }

  async function signOut({ scope = "this" } = {}) {
    const path = { this: "auth/logout", all: "auth/logout-all", others: "auth/logout-others" }[scope];
    if (!path) throw new TypeError("signOut: scope must be 'this', 'all' or 'others'");
    let token = null;
    try {
      token = await getAccessToken();
    } catch {}
    let res = null;
    if (token) {
      try {
        res = await authFetch(path, { body: "{}", headers: { Authorization: "Bearer " + token } });
      } catch (e) {
        if (scope === "others") throw e;
      }
    }
    if (scope === "others") {
      if (res && res.status === 200) {
        const next = fromAnswer(await res.json(), now());
        commit(next, "TOKEN_REFRESHED");
        share("refresh");
      } else if (res && !res.ok) {
        throw new AuthError(await errorCode(res), "sign-out of the other devices answered " + (res && res.status), res && res.status);
      }
      return;
    }
    signOutLocal("user", true);
  }

  function restore() {
    if (restoring) return restoring;
    restoring = (async () => {
      try {
        if (!session && channel) {
          post({ t: "hello" });
          await waitForToken(settleMs);
        }
        if (!session) {
          const canAsk = mode === "cookie" || (storage && storage.getItem(name));
          if (canAsk) {
            try {
              await refresh(null, { restore: true });
            } catch {
              // Offline or the server down: stale, retried with back-off.
            }
          }
        }
      } finally {
        restoring = null;
      }
      emit("INITIAL_SESSION", { state: state(), accessToken: session ? session.access : null });
      return state();
    })();
    return restoring;
  }

  function state() {
    if (stale || (session && remaining() <= 0)) return "stale";
    return session ? "signed_in" : "signed_out";
  }

  function on(event, cb) {
    if (!listeners.has(event)) listeners.set(event, new Set());
    listeners.get(event).add(cb);
    return () => listeners.get(event).delete(cb);
  }

  // Hidden tabs' timers are throttled: re-check when the page comes back.
  function recheck(ev) {
    if (closed) return;
    if (ev && ev.type === "online") {
      blockedUntil = 0;
      failures = 0;
    }
    if (ev && ev.type === "visibilitychange" && g.document && g.document.visibilityState !== "visible") return;
    if (blockedUntil > now()) return;
    if ((session && !fresh()) || (stale && !session && mode === "cookie")) {
      refresh(session && session.access, { retry: true }).catch(() => {});
    } else if (session) {
      schedule();
    }
  }
  const events = ["visibilitychange", "pageshow", "online", "focus"];
  if (g.addEventListener) {
    for (const e of events) (e === "visibilitychange" && g.document ? g.document : g).addEventListener(e, recheck);
  }

  function close() {
    closed = true;
    clearTimeout(timer);
    clearTimeout(retryTimer);
    if (channel) channel.close();
    if (g.removeEventListener) {
      for (const e of events) (e === "visibilitychange" && g.document ? g.document : g).removeEventListener(e, recheck);
    }
  }

  return {
    signUp,
    signIn,
    signOut,
    getAccessToken,
    fetch: clientFetch,
    on,
    restore,
    state,
    close,
  };
}
