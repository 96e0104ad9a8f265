// authserver demo page: plain JavaScript, no build step, no dependency.
//
// The page signs in simulated devices against one or more servers (one per
// revocation strategy) and shows, after every action, which access tokens
// each strategy still accepts. Tokens live in this module's memory only,
// never in storage or cookies (every fetch omits credentials), so each card
// really is a separate device. Nothing received from a server is ever
// inserted as HTML: every text goes through textContent.

// ---------------------------------------------------------------- content

// A few words under each strategy's name in the grid.
const SHORT = {
  stateless: "nothing stored",
  password_key: "key from password + salt",
  single_device: "one login id on the user",
  multi_device: "device map on the user",
  valid_date: "cutoff time on the user",
  token_version: "counter on the user",
  session_table: "a row per login",
};

// WHY explains, per action and strategy, what the server did and so why a
// token lives or dies. "default" covers the strategies not named.
const WHY = {
  register: {
    stateless: "A users row with a bcrypt hash. This strategy will never read it to check an access token.",
    default: "A users row with a bcrypt hash and a random key salt: both go into this user’s signing key.",
  },
  signin: {
    stateless: "Signed with the server secret alone, nothing stored: the server will accept this token until exp, whatever happens.",
    password_key: "Signed with a key derived from the server secret, the password hash and the key salt. Nothing is stored per device.",
    single_device: "The login id (sid) became the user’s one state value: an earlier device’s sid no longer matches, so it is signed out.",
    multi_device: "The login was added to the user’s device map. A token is valid while its sid is in the map.",
    valid_date: "The token carries iat_us, its issue time in µs. It is valid while iat_us ≥ the user’s cutoff.",
    token_version: "The token carries ver, a copy of the user’s counter. It is valid while the two match.",
    session_table: "A sessions row was inserted. A token is valid while its sid names a live row.",
  },
  refresh: {
    default: "The refresh token was spent for a new pair (rotation). Refresh re-checks the strategy’s state, so it cannot bring back an ended login.",
  },
  logout: {
    stateless: "Only the refresh token was revoked. The access token is a self-contained JWT: it stays valid until exp. That is the lesson.",
    password_key: "Ending one device would take a new key, which ends every device. So only the refresh token was revoked: the access token lives until exp.",
    single_device: "The state value was cleared: the token’s sid no longer matches → token_revoked.",
    multi_device: "The device left the map: its sid is not found any more → token_revoked. Other devices stay.",
    valid_date: "Moving the cutoff would end every device, so only the refresh token was revoked: the access token lives until exp.",
    token_version: "Bumping the counter would end every device, so only the refresh token was revoked: the access token lives until exp.",
    session_table: "The login’s session row got revoked_at → token_revoked. Other rows are untouched.",
  },
  logout_all: {
    stateless: "501 not_supported: nothing on the server can make a signed access token invalid before exp.",
    password_key: "The key salt was rotated: a new signing key, so every older signature fails → token_invalid.",
    single_device: "The state value was cleared: no sid matches any more → token_revoked.",
    multi_device: "The device map was emptied → token_revoked everywhere.",
    valid_date: "The cutoff moved to now: every token issued before it → token_revoked.",
    token_version: "The counter went up: every older token carries the old ver → token_revoked.",
    session_table: "Every session row of the user got revoked_at → token_revoked.",
  },
  logout_others: {
    stateless: "501 not_supported: this strategy cannot end any access token.",
    password_key: "It cannot end one device alone: it rotated the salt for everyone and answered 200 with fresh tokens for this device.",
    single_device: "204: there is only ever one device, so there was nothing else to end.",
    multi_device: "204: every other entry left the device map; this device’s token keeps working.",
    valid_date: "It cannot end one device alone: it moved the cutoff for everyone and answered 200 with fresh tokens for this device.",
    token_version: "It cannot end one device alone: it bumped the counter for everyone and answered 200 with fresh tokens for this device.",
    session_table: "204: every other session row was revoked; this device’s row stays live.",
  },
  revoke: {
    default: "No device list under this strategy: GET /sessions answers 501, so one device cannot end another.",
    single_device: "The list holds one entry, the current device. Revoking it cleared the state value → token_revoked.",
    multi_device: "Its entry was removed from the device map → token_revoked. The others stay.",
    session_table: "Its session row got revoked_at → token_revoked. The others stay.",
  },
  change_password: {
    stateless: "The hash changed, but the tokens do not depend on it: every access token stays valid until exp. Only refresh tokens were revoked.",
    password_key: "The signing key is derived from the password hash: new hash, new key. Every older token fails its signature → token_invalid. This device got fresh tokens.",
    single_device: "New hash, new signing key: older tokens fail their signature → token_invalid. The state value now holds this device’s new login.",
    multi_device: "New hash, new signing key: older tokens fail their signature → token_invalid. The device map was emptied, then this device added back.",
    valid_date: "New hash, new signing key: older tokens fail their signature → token_invalid. The cutoff moved to now as well. This device got fresh tokens.",
    token_version: "New hash, new signing key: older tokens fail their signature → token_invalid. The counter went up as well. This device got fresh tokens.",
    session_table: "New hash, new signing key: older tokens fail their signature → token_invalid. Every session row was revoked; this device got a new one.",
  },
  reset_password: {
    stateless: "The password was reset, but access tokens do not depend on it: they stay valid until exp. Refresh tokens were revoked.",
    password_key: "New hash, new signing key: every token of every device fails its signature → token_invalid. Sign in again.",
    single_device: "New hash, new signing key: every token fails its signature → token_invalid, and the state value was cleared.",
    multi_device: "New hash, new signing key: every token fails its signature → token_invalid, and the device map was emptied.",
    valid_date: "New hash, new signing key: every token fails its signature → token_invalid, and the cutoff moved to now.",
    token_version: "New hash, new signing key: every token fails its signature → token_invalid, and the counter went up.",
    session_table: "New hash, new signing key: every token fails its signature → token_invalid, and every session row was revoked.",
  },
  expired: {
    default: "exp has passed: every strategy rejects the token (token_expired), stateless too; that is all a plain JWT can do. “Refresh tokens” works where the login was not ended.",
  },
  delete: {
    stateless: "The user row is gone, yet the tokens still pass /auth/verify until exp: it looks at nothing but the token.",
    default: "No user row, no signing key: every token → token_invalid.",
  },
};

// CLAIM_NOTES says what a claim is for.
const CLAIM_NOTES = {
  sub: "user id",
  sid: "login id: the device, session and refresh family",
  ver: "token_version’s counter at issue",
  iat_us: "issue time in µs, compared with valid_date’s cutoff",
  jti: "token id",
};

const DEVICE_NAMES = ["Laptop", "Phone", "Tablet"];
const MAX_DEVICES = 3;
const LOG_LIMIT = 400;

// ---------------------------------------------------------------- state

const app = {
  targets: [], // {name, api}
  account: null, // {email, password: {strategy: pw}, exists: {strategy: bool}, deleted: {strategy: bool}}
  devices: [], // {id, name, sessions: {strategy: Session}}
  view: "",
  last: null, // {title, sub, results: {strategy: {answer, why, kind}}}
  store: {}, // strategy -> {data, note, askedWith}
  log: [],
  busy: false,
  actions: 0,
  nextDevice: 1,
  did: new Set(), // the actions done so far, for the next-step hint
  passwordRound: 1,
};

// ---------------------------------------------------------------- DOM helpers

const $ = (id) => document.getElementById(id);

// el builds an element. attrs: "class", "text", data-* and aria-* and any
// attribute; children are nodes or strings (always text, never HTML).
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k === "onclick") node.addEventListener("click", v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// withFocus re-renders and puts the keyboard focus back on the element of
// the same id, so that a keyboard user does not lose their place.
function withFocus(fn) {
  const id = document.activeElement && document.activeElement.id;
  fn();
  if (id) {
    const again = $(id);
    if (again && again !== document.activeElement) again.focus({ preventScroll: true });
  }
}

function setStatus(id, text, kind = "") {
  const node = $(id);
  node.textContent = text;
  node.className = "status-line" + (kind ? " is-" + kind : "");
}

// ---------------------------------------------------------------- API

// call makes one API request under a target and logs it.
async function call(target, method, path, { token, body, device, probe = false } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  const init = { method, headers, credentials: "omit", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let status = 0;
  let data = null;
  let code = "";
  try {
    const res = await fetch(target.api + path, init);
    status = res.status;
    const text = await res.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (data && data.error && typeof data.error.code === "string") code = data.error.code;
  } catch {
    code = "network_error";
  }
  addLog({ time: new Date(), strategy: target.name, device: device ? device.name : "", method, path, status, code, probe });
  return { status, data, code, ok: status >= 200 && status < 300 };
}

function addLog(entry) {
  app.log.unshift(entry);
  if (app.log.length > LOG_LIMIT) app.log.length = LOG_LIMIT;
}

// ---------------------------------------------------------------- tokens

function b64urlDecode(part) {
  let s = part.replace(/-/g, "+").replace(/_/g, "/");
  while (s.length % 4) s += "=";
  const bin = atob(s);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

// decodeJWT reads a token's header and claims for display. The page
// trusts nothing in them: the servers decide, the page only shows.
function decodeJWT(token) {
  try {
    const [h, p] = token.split(".");
    return { header: JSON.parse(b64urlDecode(h)), claims: JSON.parse(b64urlDecode(p)) };
  } catch {
    return { header: null, claims: null };
  }
}

// newSession holds one device's tokens under one strategy.
function newSession(tokens) {
  const { header, claims } = decodeJWT(tokens.access_token);
  return {
    access: tokens.access_token,
    refresh: tokens.refresh_token,
    header,
    claims,
    ended: "", // the action by which the user ended this login, if any
    status: { kind: "pending", code: "" },
    prev: null,
    expNoticed: false,
  };
}

function replaceTokens(dev, name, tokens) {
  const old = dev.sessions[name];
  const s = newSession(tokens);
  if (old) s.status = old.status;
  dev.sessions[name] = s;
}

// ---------------------------------------------------------------- probing

// probeAll asks every server about every device's token and reads what
// each stores. actor is the device whose token is preferred for the state.
async function probeAll(actor) {
  const jobs = [];
  for (const dev of app.devices) {
    for (const t of app.targets) {
      const s = dev.sessions[t.name];
      if (!s || !s.access) continue;
      jobs.push(
        call(t, "GET", "/auth/verify", { token: s.access, device: dev, probe: true }).then((r) => {
          s.prev = s.status;
          s.status = r.ok ? { kind: "ok", code: "" } : { kind: "bad", code: r.code || "http_" + r.status };
        }),
      );
    }
  }
  await Promise.all(jobs);
  await Promise.all(app.targets.map((t) => loadStore(t, actor)));
}

async function loadStore(t, actor) {
  if (!app.account || !app.account.exists[t.name]) {
    app.store[t.name] = { note: "No account yet." };
    return;
  }
  if (app.account.deleted[t.name]) {
    app.store[t.name] = { note: "The account was deleted: nothing is stored any more." };
    return;
  }
  const candidates = [actor, ...app.devices].filter(Boolean);
  const dev = candidates.find((d) => d.sessions[t.name] && d.sessions[t.name].status.kind === "ok");
  if (!dev) {
    app.store[t.name] = { note: "No device holds a token this server accepts, and the endpoint shows only the caller’s own account: sign in or refresh a device to look." };
    return;
  }
  const r = await call(t, "GET", "/demo/state", { token: dev.sessions[t.name].access, device: dev, probe: true });
  if (r.ok && r.data) {
    const fields = storeFields(r.data);
    const before = app.store[t.name] && app.store[t.name].fields;
    const changed = new Set(before ? fields.filter(([k, v]) => before.some(([bk, bv]) => bk === k && bv !== v)).map(([k]) => k) : []);
    app.store[t.name] = { data: r.data, fields, changed, askedWith: dev.name };
  } else if (r.status === 404) {
    app.store[t.name] = { note: "This server does not offer the demo state endpoint." };
  } else {
    app.store[t.name] = { note: "Could not read the state: " + (r.code || "HTTP " + r.status) + "." };
  }
}

// ---------------------------------------------------------------- actions

// perTarget runs fn for every target at once and collects the results by
// strategy name.
async function perTarget(fn) {
  const out = {};
  await Promise.all(
    app.targets.map(async (t) => {
      out[t.name] = await fn(t);
    }),
  );
  return out;
}

// answerOf turns an API result into the grid's answer row.
function answerOf(r) {
  if (!r) return { text: "—", kind: "none" };
  if (r.skipped) return { text: r.skipped, kind: "none" };
  const kind = r.ok ? "ok" : r.status === 501 ? "warn" : "bad";
  return { text: r.status ? r.status + (r.code ? " " + r.code : "") : r.code || "failed", kind };
}

// whyOf picks the explanation of an action's outcome under a strategy.
function whyOf(action, name, r, ctx = {}) {
  if (!r) return "";
  if (r.skipped) return r.why || "";
  if (r.status === 0) return "The request did not reach the server.";
  const code = r.code || "HTTP " + r.status;
  if (r.status === 401 && ctx.needsToken) {
    return `This device’s token was already rejected here (${code}), so the server refused the call: nothing changed.`;
  }
  if (action === "refresh" && !r.ok) {
    return `Refused with ${code}: refresh re-checks the login, and this one was ended (its refresh family is revoked).`;
  }
  if (!r.ok && r.status !== 501) return `Refused with ${code}.`;
  const table = WHY[action] || {};
  return table[name] || table.default || "";
}

// runAction is every button's path: one action on every strategy at once,
// then a fresh look at every token, then the explanation.
async function runAction(title, sub, action, fn, opts = {}) {
  if (app.busy) return;
  setBusy(true);
  try {
    const results = await fn();
    await probeAll(opts.actor);
    const rows = {};
    for (const t of app.targets) {
      const r = results ? results[t.name] : undefined;
      rows[t.name] = { answer: answerOf(r), why: whyOf(action, t.name, r, opts) };
    }
    app.last = { action, title, sub: opts.call ? `${sub} · ${opts.call}` : sub, rows };
    app.did.add(action);
    render();
    announce(title);
  } finally {
    setBusy(false);
  }
}

function setBusy(on) {
  app.busy = on;
  const main = $("main");
  main.dataset.busy = on ? "true" : "false";
  main.setAttribute("aria-busy", on ? "true" : "false");
  if (!on) main.dataset.actions = String(++app.actions);
}

function announce(title) {
  const rejected = [];
  for (const dev of app.devices) {
    for (const t of app.targets) {
      const s = dev.sessions[t.name];
      if (s && s.status.kind === "bad") rejected.push(`${dev.name} under ${t.name}`);
    }
  }
  $("grid-live").textContent = `${title} done. ` + (rejected.length ? `Rejected: ${rejected.join(", ")}.` : "Every token is accepted.");
}

async function createAccount(ev) {
  ev.preventDefault();
  if (app.busy) return;
  const email = $("email").value.trim();
  const password = $("password").value;
  if (!email || password.length < 8) {
    setStatus("account-status", "Enter an email and a password of at least 8 characters.", "error");
    return;
  }
  if (app.account && !allDeleted()) {
    setStatus("account-status", "The account exists. Sign in a device next.", "ok");
    return;
  }
  app.devices = [];
  app.nextDevice = 1;
  app.account = { email, password: {}, exists: {}, deleted: {} };
  await runAction("Create account", email, "register", () =>
    perTarget(async (t) => {
      const r = await call(t, "POST", "/auth/register", { body: { email, password } });
      if (r.ok || r.code === "email_taken") {
        app.account.exists[t.name] = true;
        app.account.password[t.name] = password;
      }
      return r;
    }),
  );
  const n = Object.keys(app.account.exists).length;
  if (n === app.targets.length) setStatus("account-status", `Account created under ${n === 1 ? "the strategy" : "all " + n + " strategies"}. Now sign in a device.`, "ok");
  else setStatus("account-status", `Account created under ${n} of ${app.targets.length} strategies; see the API calls.`, "error");
  updateSigninForm();
}

function allDeleted() {
  return app.account && app.targets.every((t) => app.account.deleted[t.name] || !app.account.exists[t.name]);
}

async function signIn(ev) {
  ev.preventDefault();
  if (app.busy) return;
  if (!app.account || allDeleted()) {
    setStatus("signin-status", "Create the account first.", "error");
    return;
  }
  if (app.devices.length >= MAX_DEVICES) {
    setStatus("signin-status", `${MAX_DEVICES} devices are enough to see every effect.`, "error");
    return;
  }
  const name = $("device-name").value.trim().slice(0, 40);
  if (!name) {
    setStatus("signin-status", "Give the device a name.", "error");
    return;
  }
  if (app.devices.some((d) => d.name === name)) {
    setStatus("signin-status", "Another device has this name.", "error");
    return;
  }
  const dev = { id: "d" + app.nextDevice++, name, sessions: {} };
  app.devices.push(dev);
  await runAction("Sign in", name, "signin", () => loginAll(dev), { actor: dev, call: "POST /auth/login" });
  setStatus("signin-status", `${name} is signed in. Look at the grid.`, "ok");
  updateSigninForm();
}

function loginAll(dev) {
  return perTarget(async (t) => {
    if (!app.account.exists[t.name] || app.account.deleted[t.name]) return { skipped: "no account", why: "There is no account under this strategy." };
    const r = await call(t, "POST", "/auth/login", {
      body: { email: app.account.email, password: app.account.password[t.name], device_name: dev.name },
      device: dev,
    });
    if (r.ok) replaceTokens(dev, t.name, r.data);
    return r;
  });
}

function updateSigninForm() {
  const used = new Set(app.devices.map((d) => d.name));
  const next = DEVICE_NAMES.find((n) => !used.has(n)) || "Device " + (app.devices.length + 1);
  $("device-name").value = app.devices.length < MAX_DEVICES ? next : "";
  const ready = app.account && !allDeleted() && app.devices.length < MAX_DEVICES;
  $("sign-in").setAttribute("aria-disabled", ready ? "false" : "true");
  $("create-account").textContent = app.account && allDeleted() ? "Start over" : "Create account";
}

// deviceAction builds the handler of a device card's button.
function deviceAction(kind, dev) {
  return () => {
    if (app.busy) return;
    switch (kind) {
      case "signin":
        return runAction("Sign in again", dev.name, "signin", () => loginAll(dev), { actor: dev, call: "POST /auth/login" });
      case "refresh":
        return runAction("Refresh tokens", dev.name, "refresh", () => withToken(dev, (t, s) => refreshOne(dev, t, s)), { actor: dev, call: "POST /auth/refresh" });
      case "logout":
        return runAction("Log out", dev.name, "logout", () => endWith(dev, [dev], "logout", "POST", "/auth/logout"), { actor: dev, needsToken: true, call: "POST /auth/logout" });
      case "logout_all":
        return runAction("Log out everywhere", dev.name, "logout_all", () => endWith(dev, app.devices, "logout-all", "POST", "/auth/logout-all"), { actor: dev, needsToken: true, call: "POST /auth/logout-all" });
      case "logout_others":
        return runAction("Log out other devices", dev.name, "logout_others", () => logoutOthers(dev), { actor: dev, needsToken: true, call: "POST /auth/logout-others" });
      case "change_password":
        return runAction("Change password", dev.name, "change_password", () => changePassword(dev), { actor: dev, needsToken: true, call: "PUT /me/password" });
      case "delete":
        return runAction("Delete account", dev.name, "delete", () => deleteAccount(dev), { actor: dev, needsToken: true, call: "DELETE /me" });
      default:
        return undefined;
    }
  };
}

// withToken runs fn for every strategy under which dev holds a token.
function withToken(dev, fn) {
  return perTarget(async (t) => {
    const s = dev.sessions[t.name];
    if (!s || !s.access) return { skipped: "no token", why: "This device has no token under this strategy." };
    return fn(t, s);
  });
}

async function refreshOne(dev, t, s) {
  const r = await call(t, "POST", "/auth/refresh", { body: { refresh_token: s.refresh }, device: dev });
  if (r.ok) replaceTokens(dev, t.name, r.data);
  return r;
}

// endWith makes a call with dev's token and marks the devices in ended as
// ended by the user, so that a token that survives it shows as such.
function endWith(dev, ended, label, method, path) {
  return withToken(dev, async (t, s) => {
    const r = await call(t, method, path, { token: s.access, device: dev });
    for (const d of ended) if (d.sessions[t.name]) d.sessions[t.name].ended = label;
    return r;
  });
}

function logoutOthers(dev) {
  return withToken(dev, async (t, s) => {
    const r = await call(t, "POST", "/auth/logout-others", { token: s.access, device: dev });
    for (const d of app.devices) if (d !== dev && d.sessions[t.name]) d.sessions[t.name].ended = "logout-others";
    if (r.status === 200 && r.data && r.data.access_token) replaceTokens(dev, t.name, r.data);
    return r;
  });
}

// revoke ends target from dev's device list: GET /sessions, then DELETE
// the entry whose id is target's login id (its token's sid).
function revoke(dev, target) {
  if (app.busy) return;
  return runAction(`Revoke ${target.name}`, `from ${dev.name}’s device list`, "revoke", () =>
    withToken(dev, async (t, s) => {
      const list = await call(t, "GET", "/sessions", { token: s.access, device: dev });
      const ts = target.sessions[t.name];
      if (ts) ts.ended = "revoke";
      if (!list.ok) return list;
      const sid = ts && ts.claims ? ts.claims.sid : "";
      const found = (list.data.sessions || []).find((x) => x.id === sid);
      if (!found) {
        return { skipped: "not in the list", why: `${target.name} is not in ${dev.name}’s device list here: it was already signed out.` };
      }
      return call(t, "DELETE", "/sessions/" + encodeURIComponent(found.id), { token: s.access, device: dev });
    }),
    { actor: dev, needsToken: true, call: "DELETE /sessions/{id}" },
  );
}

function nextPassword() {
  const pw = $("new-password").value;
  if (pw.length < 8) return "";
  return pw;
}

function bumpPasswordField() {
  app.passwordRound++;
  $("new-password").value = "battery staple " + app.passwordRound;
}

function changePassword(dev) {
  const pw = nextPassword();
  if (!pw) {
    setStatus("password-status", "The new password needs at least 8 characters.", "error");
    return Promise.resolve({});
  }
  return withToken(dev, async (t, s) => {
    const r = await call(t, "PUT", "/me/password", {
      token: s.access,
      body: { current_password: app.account.password[t.name], new_password: pw },
      device: dev,
    });
    for (const d of app.devices) if (d.sessions[t.name]) d.sessions[t.name].ended = "password change";
    if (r.ok) {
      app.account.password[t.name] = pw;
      replaceTokens(dev, t.name, r.data);
    }
    return r;
  }).then((res) => {
    if (Object.values(res).some((r) => r && r.ok)) $("password").value = pw;
    setStatus("password-status", `Password changed to “${pw}” from ${dev.name}.`, "ok");
    bumpPasswordField();
    return res;
  });
}

async function resetPassword(ev) {
  ev.preventDefault();
  if (app.busy) return;
  if (!app.account || allDeleted()) {
    setStatus("password-status", "Create the account first.", "error");
    return;
  }
  const pw = nextPassword();
  if (!pw) {
    setStatus("password-status", "The new password needs at least 8 characters.", "error");
    return;
  }
  let hidden = 0;
  await runAction("Reset password", "by e-mail token", "reset_password", () =>
    perTarget(async (t) => {
      if (!app.account.exists[t.name] || app.account.deleted[t.name]) return { skipped: "no account", why: "There is no account under this strategy." };
      const req = await call(t, "POST", "/auth/password-reset", { body: { email: app.account.email } });
      if (!req.ok) return req;
      const token = req.data && req.data.reset_token;
      if (!token) {
        hidden++;
        return { skipped: "202, token mailed", why: "The reset token went to the mailer (reset.expose_token is off), so the page cannot confirm the reset." };
      }
      const r = await call(t, "POST", "/auth/password-reset/confirm", { body: { token, new_password: pw } });
      if (r.ok) {
        app.account.password[t.name] = pw;
        for (const d of app.devices) if (d.sessions[t.name]) d.sessions[t.name].ended = "password reset";
      }
      return r;
    }),
  );
  if (hidden) setStatus("password-status", "This server mails reset tokens instead of returning them: the page cannot finish the reset.", "error");
  else {
    $("password").value = pw;
    setStatus("password-status", `Password reset to “${pw}”. No device got new tokens.`, "ok");
  }
  bumpPasswordField();
}

function deleteAccount(dev) {
  return withToken(dev, async (t, s) => {
    const r = await call(t, "DELETE", "/me", { token: s.access, body: { password: app.account.password[t.name] }, device: dev });
    if (r.ok) {
      app.account.deleted[t.name] = true;
      for (const d of app.devices) if (d.sessions[t.name]) d.sessions[t.name].ended = "account deletion";
    }
    return r;
  }).then((res) => {
    if (allDeleted()) setStatus("account-status", "The account is deleted. Press “Start over” for a new one.", "ok");
    updateSigninForm();
    return res;
  });
}

// recheck looks at every token again. After an expiry it explains that
// instead of the last action.
async function recheck(expired = false) {
  if (app.busy) return;
  setBusy(true);
  try {
    await probeAll();
    if (expired) {
      const rows = {};
      for (const t of app.targets) rows[t.name] = { answer: { text: "—", kind: "none" }, why: WHY.expired.default };
      app.last = { action: "expired", title: "Tokens expired", sub: "exp reached, nothing was called", rows };
    }
    render();
    announce(expired ? "Tokens expired; re-check" : "Re-check");
  } finally {
    setBusy(false);
  }
}

// ---------------------------------------------------------------- rendering

function render() {
  withFocus(() => {
    $("next-step-text").textContent = nextHint();
    renderGrid();
    renderDevices();
    renderStore();
    renderLog();
  });
}

// nextHint suggests the next step of the tour.
function nextHint() {
  if (!app.account) return "Start with step 1: create the account.";
  if (allDeleted()) return "The account is gone, yet under stateless its tokens still pass until exp. Press “Start over” for a new account.";
  if (app.devices.length === 0) return "Sign in a device (step 1).";
  if (app.devices.length === 1) return "Sign in a second device, and watch the single_device column.";
  const [a, b] = app.devices;
  if (app.last && app.last.action === "expired") return `The tokens expired. Press “Refresh tokens” on ${b.name}, then on ${a.name}: which refreshes work?`;
  if (!app.did.has("logout")) return `Press “Log out” on ${a.name}: which strategies still accept its token?`;
  if (!app.did.has("change_password") && !app.did.has("reset_password")) return `Now press “Change password” on ${b.name}: which old tokens survive?`;
  if (!app.did.has("logout_all")) return "Try “Sign in again” and “Log out everywhere”, “Revoke” or “Delete account”, or let the countdown reach zero.";
  return "Try “Revoke”, “Log out other devices” or “Delete account”, or let the countdown reach zero: an expired token is rejected everywhere.";
}

// cellOf is what the grid shows for one device under one strategy.
function cellOf(dev, name) {
  const s = dev.sessions[name];
  if (!s || !s.access) return { kind: "none", label: "no token", icon: "—", note: "" };
  const st = s.status;
  let note = "";
  if (s.prev && s.prev.kind !== "pending" && (s.prev.kind !== st.kind || s.prev.code !== st.code)) {
    note = "was " + (s.prev.kind === "ok" ? "valid" : s.prev.code);
  }
  if (st.kind === "pending") return { kind: "pending", label: "checking", icon: "…", note };
  if (st.kind === "ok") {
    if (s.ended) return { kind: "stale", label: "valid", icon: "!", note: "still, after " + s.ended, changed: !!note };
    return { kind: "ok", label: "valid", icon: "✓", note, changed: !!note };
  }
  return { kind: "bad", label: st.code || "rejected", icon: "✕", note, changed: !!note };
}

function renderGrid() {
  const table = $("grid");
  const thead = table.tHead;
  const tbody = table.tBodies[0];
  const tfoot = table.tFoot;
  thead.replaceChildren(
    el(
      "tr",
      {},
      el("th", { scope: "col" }, el("span", { class: "strategy-name", text: "Device" }), el("span", { class: "strategy-desc", text: "strategy →" })),
      app.targets.map((t) =>
        el("th", { scope: "col" }, el("span", { class: "strategy-name", text: t.name }), el("span", { class: "strategy-desc", text: SHORT[t.name] || "" })),
      ),
    ),
  );
  if (app.devices.length === 0) {
    tbody.replaceChildren(
      el("tr", {}, el("th", { scope: "row", class: "device-sub", text: "—" }), el("td", { colspan: app.targets.length, class: "empty", text: "Sign in a device to fill the grid." })),
    );
  } else {
    tbody.replaceChildren(
      ...app.devices.map((dev) =>
        el(
          "tr",
          { "data-device": dev.name },
          el("th", { scope: "row" }, el("span", { class: "device-label", text: dev.name }), el("span", { class: "device-sub", text: deviceSummary(dev) })),
          app.targets.map((t) => {
            const c = cellOf(dev, t.name);
            return el(
              "td",
              {
                class: `cell cell-${c.kind}${c.changed ? " cell-changed" : ""}`,
                "data-device": dev.name,
                "data-strategy": t.name,
                "data-kind": c.kind,
                "data-code": c.kind === "bad" ? c.label : "",
              },
              el("span", { class: "cell-main" }, el("span", { class: "cell-icon", "aria-hidden": "true", text: c.icon }), c.label),
              c.note ? el("span", { class: "cell-note", text: c.note }) : null,
            );
          }),
        ),
      ),
    );
  }
  if (!app.last) {
    tfoot.replaceChildren();
    return;
  }
  tfoot.replaceChildren(
    el(
      "tr",
      {},
      el("th", { scope: "row", class: "action-title" }, app.last.title, el("span", { text: app.last.sub })),
      app.targets.map((t) => {
        const a = app.last.rows[t.name].answer;
        return el("td", { class: `answer answer-${a.kind}`, "data-strategy": t.name }, a.text);
      }),
    ),
    el(
      "tr",
      {},
      el("th", { scope: "row", text: "Why?" }),
      app.targets.map((t) => el("td", { class: "why", "data-strategy": t.name, text: app.last.rows[t.name].why })),
    ),
  );
}

function deviceSummary(dev) {
  let ok = 0;
  for (const t of app.targets) {
    const s = dev.sessions[t.name];
    if (s && s.status.kind === "ok") ok++;
  }
  return `${ok} of ${app.targets.length} accept it`;
}

function renderTokenView() {
  const box = $("token-view-options");
  box.replaceChildren(
    ...app.targets.flatMap((t) => {
      const id = "view-" + t.name;
      const input = el("input", { type: "radio", name: "token-view", id, value: t.name });
      input.checked = t.name === app.view;
      input.addEventListener("change", () => {
        app.view = t.name;
        withFocus(renderDevices);
      });
      return [input, el("label", { for: id, text: t.name })];
    }),
  );
  $("token-view").hidden = app.targets.length < 2;
}

function renderDevices() {
  const box = $("devices");
  if (app.devices.length === 0) {
    box.replaceChildren(el("p", { class: "empty", text: "No device yet: create the account, then sign in a device." }));
    return;
  }
  box.replaceChildren(...app.devices.map(deviceCard));
  tick();
}

function deviceCard(dev) {
  const name = app.view;
  const s = dev.sessions[name];
  let ok = 0;
  let bad = 0;
  for (const t of app.targets) {
    const x = dev.sessions[t.name];
    if (x && x.status.kind === "ok") ok++;
    else bad++;
  }
  const tone = bad === 0 ? "" : ok === 0 ? " is-dead" : " is-mixed";
  const headId = dev.id + "-title";
  const btn = (kind, text, label, extra = "") =>
    el("button", { type: "button", class: "btn btn-small" + extra, id: `${dev.id}-${kind}`, "aria-label": label, onclick: deviceAction(kind, dev) }, text);

  const others = app.devices.filter((d) => d !== dev);
  const side = el(
    "div",
    { class: "device-side" },
    el(
      "div",
      { class: "actions", role: "group", "aria-label": `Actions of ${dev.name}, applied under every strategy` },
      el("p", { class: "actions-label", "aria-hidden": "true", text: "Actions, under every strategy at once" }),
      btn("refresh", "Refresh tokens", `Refresh tokens of ${dev.name}`),
      btn("logout", "Log out", `Log out ${dev.name}`),
      btn("logout_all", "Log out everywhere", `Log out everywhere, from ${dev.name}`),
      btn("logout_others", "Log out other devices", `Log out other devices, from ${dev.name}`),
      btn("change_password", "Change password", `Change password, from ${dev.name}`),
      btn("signin", "Sign in again", `Sign in again on ${dev.name}`),
      btn("delete", "Delete account", `Delete account, from ${dev.name}`, " btn-danger"),
    ),
    others.length
      ? el(
          "div",
          { class: "revoke", role: "group", "aria-label": `Revoke another device from ${dev.name}’s device list` },
          el("p", { class: "actions-label", "aria-hidden": "true", text: `Revoke from ${dev.name}’s device list` }),
          others.map((o) =>
            el(
              "button",
              { type: "button", class: "btn btn-small", id: `${dev.id}-revoke-${o.id}`, "aria-label": `Revoke ${o.name}, from ${dev.name}’s device list`, onclick: () => revoke(dev, o) },
              `Revoke ${o.name}`,
            ),
          ),
        )
      : null,
  );
  return el(
    "article",
    { class: "device" + tone, "aria-labelledby": headId, "data-device": dev.name },
    el("div", { class: "device-head" }, el("h3", { id: headId, text: dev.name }), el("span", { class: "device-summary", text: deviceSummary(dev) })),
    el(
      "div",
      { class: "device-body" },
      s && s.access ? tokenView(dev, name, s) : el("p", { class: "no-token", text: `No token under ${name}.` }),
      side,
    ),
  );
}

function tokenView(dev, name, s) {
  const parts = s.access.split(".");
  const claims = s.claims || {};
  const exp = typeof claims.exp === "number" ? claims.exp : 0;
  const iat = typeof claims.iat === "number" ? claims.iat : 0;
  const ttl = exp && iat ? exp - iat : 0;
  const rows = [];
  for (const [k, v] of Object.entries(claims)) {
    let value = Array.isArray(v) ? v.join(", ") : String(v);
    let note = CLAIM_NOTES[k] || "";
    if ((k === "exp" || k === "iat") && typeof v === "number") {
      value = `${v}`;
      note = new Date(v * 1000).toLocaleTimeString();
    }
    rows.push(el("dt", { text: k }), el("dd", {}, value, note ? el("span", { class: "note" }, " · " + note) : null));
  }
  return el(
    "div",
    { class: "token" },
    el(
      "div",
      { class: "token-meta" },
      el("span", {}, "Access token under ", el("strong", { text: name })),
      statusPill(cellOf(dev, name)),
      el("span", {}, "expires in ", el("span", { class: "countdown", "data-exp": exp, id: `${dev.id}-countdown`, text: "…" })),
      ttl ? el("progress", { class: "ttl", max: ttl, value: 0, "data-exp": exp, "aria-label": `Lifetime left of ${dev.name}’s token` }) : null,
    ),
    el(
      "code",
      { class: "jwt", "aria-label": `${dev.name}’s access token under ${name}` },
      el("span", { class: "jwt-h", text: parts[0] || "" }),
      el("span", { class: "jwt-dot", text: "." }),
      el("span", { class: "jwt-p", text: parts[1] || "" }),
      el("span", { class: "jwt-dot", text: "." }),
      el("span", { class: "jwt-s", text: parts[2] || "" }),
    ),
    el(
      "div",
      { class: "decoded" },
      el("div", {}, el("h4", { text: "Header" }), el("p", { class: "header-json", text: s.header ? JSON.stringify(s.header) : "(not a JWT)" })),
      el("div", {}, el("h4", { text: "Claims" }), el("dl", { class: "claims" }, rows)),
    ),
  );
}

function statusPill(c) {
  const cls = { ok: "pill-ok", stale: "pill-stale", bad: "pill-bad" }[c.kind] || "pill-none";
  return el("span", { class: "pill " + cls }, el("span", { "aria-hidden": "true", text: c.icon }), " " + c.label);
}

// tick updates the countdowns every second and re-checks the grid once a
// token has expired.
function tick() {
  const now = Date.now() / 1000;
  for (const node of document.querySelectorAll(".countdown[data-exp]")) {
    const left = Math.round(Number(node.dataset.exp) - now);
    if (left > 0) {
      node.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
      node.classList.remove("is-expired");
    } else {
      node.textContent = "expired";
      node.classList.add("is-expired");
    }
  }
  for (const node of document.querySelectorAll("progress[data-exp]")) {
    node.value = Math.max(0, Number(node.dataset.exp) - now);
  }
  // A token that expired during an action is noticed at the next tick.
  if (app.busy) return;
  let expired = false;
  for (const dev of app.devices) {
    for (const s of Object.values(dev.sessions)) {
      const exp = s.claims && typeof s.claims.exp === "number" ? s.claims.exp : 0;
      if (exp && exp <= now && !s.expNoticed) {
        s.expNoticed = true;
        expired = true;
      }
    }
  }
  if (expired) recheck(true);
}

function renderStore() {
  const box = $("store");
  box.replaceChildren(...app.targets.map((t) => storeCard(t.name, app.store[t.name] || { note: "No account yet." })));
}

// STORE_FIELDS maps the state endpoint's check names to the columns they
// describe.
const STORE_FIELDS = [
  ["key_salt_fingerprint", "key_salt"],
  ["password_hash_fingerprint", "password_hash"],
  ["state", "state"],
  ["devices", "devices"],
  ["valid_after_micros", "valid_after_micros"],
  ["token_version", "token_version"],
  ["sessions", "sessions"],
];

// storeFields turns the state endpoint's answer into [check, text] pairs.
function storeFields(d) {
  const u = d.user || {};
  const text = {
    key_salt_fingerprint: u.key_salt_fingerprint ? "sha256:" + u.key_salt_fingerprint : "",
    password_hash_fingerprint: u.password_hash_fingerprint ? "sha256:" + u.password_hash_fingerprint : "",
    state: u.state ? short(u.state) : "(empty)",
    devices: deviceMapText(u.devices),
    valid_after_micros: u.valid_after_micros ? `${u.valid_after_micros}\n= ${new Date(u.valid_after_micros / 1000).toLocaleTimeString()}` : "0 (no cutoff yet)",
    token_version: String(u.token_version ?? ""),
    sessions: sessionsText(d.sessions),
  };
  return STORE_FIELDS.map(([k]) => [k, text[k]]);
}

function storeCard(name, entry) {
  const card = el("article", { class: "store-card", "aria-labelledby": "store-" + name, "data-strategy": name }, el("h3", { id: "store-" + name, text: name }));
  if (!entry.data) {
    card.append(el("p", { class: "none", text: entry.note || "" }));
    return card;
  }
  const d = entry.data;
  const checks = new Set(d.checks || []);
  const label = Object.fromEntries(STORE_FIELDS);
  card.append(el("p", { class: "asked", text: `Asked with ${entry.askedWith}’s token. ` + (checks.size ? "Checked on every request:" : "An access token is checked against nothing stored.") }));
  const field = ([k, v], checked) => {
    const changed = entry.changed.has(k);
    return el(
      "div",
      { class: "field-row" + (checked ? " checked" : "") + (changed ? " changed" : "") },
      el("dt", { text: label[k] }),
      el("dd", {}, v || "—", changed ? el("span", { class: "changed-mark", text: "changed" }) : null),
    );
  };
  const shown = entry.fields.filter(([k]) => checks.has(k));
  const rest = entry.fields.filter(([k]) => !checks.has(k));
  if (shown.length) card.append(el("dl", { class: "fields" }, shown.map((f) => field(f, true))));
  if (checks.has("sessions") && d.sessions && d.sessions.length) card.append(sessionsTable(d.sessions));
  card.append(el("p", { class: "sub-title", text: "Refresh tokens, one family per login" }), familiesTable(d.refresh_families || []));
  card.append(
    el(
      "details",
      {},
      el("summary", { text: `Columns stored but not checked here (${rest.length})` }),
      el("dl", { class: "fields" }, rest.map((f) => field(f, false))),
    ),
  );
  return card;
}

function short(id) {
  return id ? id.slice(0, 8) + "…" : "";
}

function deviceMapText(m) {
  const entries = Object.entries(m || {});
  if (!entries.length) return "{} (empty)";
  return entries.map(([id, d]) => `${short(id)} ${d.name || "(unnamed)"}`).join("\n");
}

function sessionsText(rows) {
  if (!rows || !rows.length) return "(no rows)";
  const live = rows.filter((r) => !r.revoked_at).length;
  return `${rows.length} rows, ${live} live`;
}

function sessionsTable(rows) {
  return el(
    "table",
    { class: "rows" },
    el("caption", { class: "visually-hidden", text: "Session rows" }),
    el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "id" }), el("th", { scope: "col", text: "device" }), el("th", { scope: "col", text: "revoked_at" }))),
    el(
      "tbody",
      {},
      rows.map((r) =>
        el(
          "tr",
          {},
          el("td", { text: short(r.id) }),
          el("td", { text: r.device_name || "" }),
          el("td", { class: r.revoked_at ? "revoked" : "live", text: r.revoked_at ? new Date(r.revoked_at).toLocaleTimeString() : "live" }),
        ),
      ),
    ),
  );
}

function familiesTable(rows) {
  if (!rows.length) return el("p", { class: "none", text: "none" });
  return el(
    "table",
    { class: "rows" },
    el("caption", { class: "visually-hidden", text: "Refresh-token families" }),
    el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "login" }), el("th", { scope: "col", text: "device" }), el("th", { scope: "col", text: "tokens" }), el("th", { scope: "col", text: "state" }))),
    el(
      "tbody",
      {},
      rows.map((r) =>
        el(
          "tr",
          {},
          el("td", { text: short(r.family_id) }),
          el("td", { text: r.device_name || "" }),
          el("td", { text: `${r.tokens} (${r.spent} spent)` }),
          el("td", { class: r.revoked_at ? "revoked" : "live", text: r.revoked_at ? "revoked" : "live" }),
        ),
      ),
    ),
  );
}

function renderLog() {
  const showProbes = $("show-probes").checked;
  const rows = app.log.filter((e) => showProbes || !e.probe).slice(0, 200);
  const body = $("log-body");
  if (!rows.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 6, text: "No API call yet." })));
    return;
  }
  body.replaceChildren(
    ...rows.map((e) => {
      const cls = e.status >= 200 && e.status < 300 ? "st-ok" : e.status === 501 ? "st-warn" : "st-bad";
      return el(
        "tr",
        { class: e.probe ? "is-probe" : "" },
        el("td", { text: e.time.toLocaleTimeString() }),
        el("td", { text: e.strategy }),
        el("td", { text: e.device || "—" }),
        el("td", { text: `${e.method} ${e.path}` }),
        el("td", { class: cls, text: e.status ? String(e.status) : "—" }),
        el("td", { text: e.code || "" }),
      );
    }),
  );
}

// ---------------------------------------------------------------- start

async function start() {
  const suffix = Math.random().toString(36).slice(2, 7);
  $("email").value = `ann.${suffix}@example.com`;
  $("password").value = "correct horse";
  $("new-password").value = "battery staple";

  let cfg;
  try {
    const res = await fetch("demo-config.json", { credentials: "omit", cache: "no-store" });
    if (!res.ok) throw new Error("HTTP " + res.status);
    cfg = await res.json();
  } catch (err) {
    const fatal = $("fatal");
    fatal.textContent = "Could not load the demo configuration (" + err.message + ").";
    fatal.hidden = false;
    return;
  }
  app.targets = (cfg.targets || []).filter((t) => t && typeof t.name === "string" && typeof t.api === "string");
  app.view = app.targets.some((t) => t.name === "password_key") ? "password_key" : app.targets[0] ? app.targets[0].name : "";

  if (app.targets.length === 1) {
    $("mode-summary").textContent = `the ${app.targets[0].name} strategy of this server`;
    $("account-help").textContent = "Registered on this server, whose strategy is " + app.targets[0].name + ".";
    $("footer-text").textContent =
      "This page uses the server’s own settings. Sign in on a second browser tab, or another browser, to add a real device.";
  } else {
    $("mode-summary").textContent = `all ${app.targets.length} revocation strategies side by side`;
  }
  await Promise.all(app.targets.map((t) => call(t, "GET", "/strategy", { probe: true })));

  $("account-form").addEventListener("submit", createAccount);
  $("signin-form").addEventListener("submit", signIn);
  $("password-form").addEventListener("submit", resetPassword);
  $("recheck").addEventListener("click", () => recheck());
  $("show-probes").addEventListener("change", () => withFocus(renderLog));
  $("clear-log").addEventListener("click", () => {
    app.log = [];
    withFocus(renderLog);
  });
  renderTokenView();
  updateSigninForm();
  render();
  setInterval(tick, 1000);
  document.documentElement.dataset.ready = "true";
}

start();
