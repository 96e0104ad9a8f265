// The 15 lines a browser app needs, type-checked against authclient.d.ts.
import { createClient, type AuthClient, type SignOutReason } from "../authclient.js";

const auth: AuthClient = createClient({ baseUrl: "/api/v1", mode: "cookie" });
auth.on("SIGNED_OUT", ({ reason }: { reason: SignOutReason }) => showLogin(reason));
auth.on("SIGNED_IN", () => showApp());
await auth.restore(); // on page load: one question to the server, through the cookie

export async function login(email: string, password: string): Promise<void> {
  const r = await auth.signIn({ email, password, deviceName: navigator.userAgent.slice(0, 100) });
  if (r.mfaRequired) return askSecondFactor(r.mfaToken, r.factors);
  console.log("signed in as", r.user?.email);
}

export const orders = async (): Promise<unknown> => (await auth.fetch("/api/orders")).json();
export const logout = (): Promise<void> => auth.signOut({ scope: "this" });
const state: "signed_in" | "signed_out" | "stale" = auth.state();

declare function showLogin(reason: SignOutReason): void;
declare function showApp(): void;
declare function askSecondFactor(token: string, factors: string[]): void;
void state;
