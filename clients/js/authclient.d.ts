// Types of authclient.js, the browser client of authserver.

export type Mode = "cookie" | "body";
export type SessionState = "signed_in" | "signed_out" | "stale";
export type SignOutReason = "user" | "revoked" | "reused" | "expired" | "other_tab";
export type SignOutScope = "this" | "all" | "others";

export interface User {
  id: string;
  email: string;
  created_at: string;
}

export interface ClientOptions {
  /** The API's mount point, e.g. "https://auth.example.com/api/v1" or "/api/v1". */
  baseUrl: string;
  /** Where the refresh token lives: the httpOnly cookie (default) or this client's memory. */
  mode?: Mode;
  /** Other origins whose requests get the bearer in client.fetch. */
  extraOrigins?: string[];
  /** Body mode only: where to keep the refresh token across reloads (e.g. sessionStorage). */
  storage?: Pick<Storage, "getItem" | "setItem" | "removeItem">;
  /** How long a tab waits for the refresh lock before stealing it (default 10000 ms). */
  lockTimeoutMs?: number;
  /** Tests and embedding: the fetch, clock, randomness, locks and channel to use. */
  fetch?: typeof globalThis.fetch;
  now?: () => number;
  random?: () => number;
  locks?: LockManager | null;
  BroadcastChannel?: typeof globalThis.BroadcastChannel | null;
  settleMs?: number;
  name?: string;
}

export interface SignInInput {
  email: string;
  password: string;
  deviceName?: string;
}

export type SignInResult =
  | { user: User | null; mfaRequired?: undefined }
  | { mfaRequired: true; mfaToken: string; factors: string[] };

export interface TokenEvent {
  accessToken: string;
  expiresIn: number;
}
export interface InitialSessionEvent {
  state: SessionState;
  accessToken: string | null;
}
export interface SignedOutEvent {
  reason: SignOutReason;
  /** With reason other_tab: why the other tab signed out. */
  cause?: SignOutReason;
}

export interface EventMap {
  INITIAL_SESSION: InitialSessionEvent;
  SIGNED_IN: TokenEvent;
  TOKEN_REFRESHED: TokenEvent;
  SIGNED_OUT: SignedOutEvent;
}

export interface AuthClient {
  signUp(input: { email: string; password: string }): Promise<{ user: User }>;
  signIn(input: SignInInput): Promise<SignInResult>;
  signOut(input?: { scope?: SignOutScope }): Promise<void>;
  /** A token with at least min(60 s, ttl/4) left, refreshed when needed; null when signed out. */
  getAccessToken(): Promise<string | null>;
  /** fetch with the bearer on the API's origin and extraOrigins only; never patches the global fetch. */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  on<E extends keyof EventMap>(event: E, cb: (payload: EventMap[E]) => void): () => void;
  /** Call on page load: asks other tabs, then the server once through the cookie. */
  restore(): Promise<SessionState>;
  state(): SessionState;
  /** Stops timers and listeners, closes the channel. */
  close(): void;
}

export declare class AuthError extends Error {
  code: string;
  status?: number;
  constructor(code: string, message?: string, status?: number);
}

export declare function createClient(options: ClientOptions): AuthClient;

export declare function refreshMargin(ttlMs: number): number;
export declare function refreshDelay(ttlMs: number, random?: () => number): number;
export declare function backoffDelay(failures: number, random?: () => number): number;
export declare function parseRetryAfter(value: string | null | undefined, nowMs?: number): number | null;
export declare function tokenLifetime(body: { expires_in: number; iat?: number; expires_at?: number }): number;
export declare function jwtClaims(token: string): Record<string, unknown>;
export declare function replayable(input: RequestInfo | URL, init?: RequestInit): boolean;
export declare function signOutReason(code: string): SignOutReason;
