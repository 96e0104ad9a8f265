// The app: the browser client does the sessions; this file is UI.
import { createClient } from "/api/v1/client.js";

const auth = createClient({ baseUrl: "/api/v1", mode: "cookie" });
const $ = (id) => document.getElementById(id);
const log = (line) => { $("log").textContent = `${new Date().toLocaleTimeString()} ${line}\n` + $("log").textContent; };
const render = () => {
  const s = auth.state();
  $("state").textContent = s;
  $("login").hidden = s !== "signed_out";
  $("app").hidden = s === "signed_out";
};
for (const ev of ["INITIAL_SESSION", "SIGNED_IN", "TOKEN_REFRESHED", "SIGNED_OUT"]) {
  auth.on(ev, (p) => { log(ev + (p && p.reason ? ` (${p.reason})` : "")); render(); });
}

$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  try {
    const r = await auth.signIn({ email: f.get("email"), password: f.get("password"), deviceName: "SPA example" });
    if (r.mfaRequired) log("a second factor is required: " + r.factors.join(", "));
    else log("signed in as " + r.user.email);
  } catch (err) {
    log("sign-in failed: " + err.code);
  }
});
$("login").signup.addEventListener("click", async () => {
  const f = new FormData($("login"));
  try {
    await auth.signUp({ email: f.get("email"), password: f.get("password") });
    log("account created; sign in");
  } catch (err) {
    log("sign-up failed: " + err.code);
  }
});
$("call").addEventListener("click", async () => {
  const r = await auth.fetch("/app/hello");
  log(`GET /app/hello: ${r.status} ${await r.text()}`);
});
$("logout").addEventListener("click", () => auth.signOut({ scope: "this" }));
$("logout-all").addEventListener("click", () => auth.signOut({ scope: "all" }));

render();
await auth.restore();
render();
