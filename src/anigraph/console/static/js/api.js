// Signed calls to the anigraph API (Tencent Cloud VOD 2018-07-17), exactly as the SDKs make them:
// POST / with a JSON body, signed with TC3-HMAC-SHA256 using WebCrypto.
// The key lives in sessionStorage only: it is gone when the tab closes.

const VERSION = "2018-07-17";
const SERVICE = "vod";
const ALGORITHM = "TC3-HMAC-SHA256";
const CONTENT_TYPE = "application/json";
const STORE = "anigraph.key";
const encoder = new TextEncoder();

/** An error answered by the API: `code` is e.g. "InvalidParameterValue.Fps". */
export class ApiError extends Error {
  constructor(code, message, requestId) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.requestId = requestId;
  }
}

export function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function sha256Hex(text) {
  return hex(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

export async function hmac(hash, key, text) {
  const raw = typeof key === "string" ? encoder.encode(key) : key;
  const cryptoKey = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash }, false, [
    "sign",
  ]);
  return crypto.subtle.sign("HMAC", cryptoKey, encoder.encode(text));
}

function utcDate(timestamp) {
  return new Date(timestamp * 1000).toISOString().slice(0, 10);
}

/** The TC3 Authorization header value for one POST / with `body`. */
export async function tc3Authorization(key, host, body, timestamp) {
  const date = utcDate(timestamp);
  const signedHeaders = "content-type;host";
  const canonicalHeaders = `content-type:${CONTENT_TYPE}\nhost:${host}\n`;
  const canonicalRequest = [
    "POST",
    "/",
    "",
    canonicalHeaders,
    signedHeaders,
    await sha256Hex(body),
  ].join("\n");
  const scope = `${date}/${SERVICE}/tc3_request`;
  const toSign = [ALGORITHM, String(timestamp), scope, await sha256Hex(canonicalRequest)].join(
    "\n",
  );
  const kDate = await hmac("SHA-256", `TC3${key.secretKey}`, date);
  const kService = await hmac("SHA-256", kDate, SERVICE);
  const kSigning = await hmac("SHA-256", kService, "tc3_request");
  const signature = hex(await hmac("SHA-256", kSigning, toSign));
  return (
    `${ALGORITHM} Credential=${key.secretId}/${scope}, ` +
    `SignedHeaders=${signedHeaders}, Signature=${signature}`
  );
}

/** Call `action` with `params` using `key` ({secretId, secretKey}); resolves to Response. */
export async function callWith(key, action, params = {}) {
  const body = JSON.stringify(params);
  const timestamp = Math.floor(Date.now() / 1000);
  const authorization = await tc3Authorization(key, location.host, body, timestamp);
  const reply = await fetch("/", {
    method: "POST",
    headers: {
      "Content-Type": CONTENT_TYPE,
      "X-TC-Action": action,
      "X-TC-Timestamp": String(timestamp),
      "X-TC-Version": VERSION,
      Authorization: authorization,
    },
    body,
  });
  const payload = await reply.json();
  const response = payload.Response || {};
  if (response.Error) {
    throw new ApiError(response.Error.Code, response.Error.Message, response.RequestId);
  }
  return response;
}

export function currentKey() {
  const text = sessionStorage.getItem(STORE);
  return text ? JSON.parse(text) : null;
}

export function saveKey(key) {
  sessionStorage.setItem(STORE, JSON.stringify(key));
}

export function forgetKey() {
  sessionStorage.removeItem(STORE);
}

/** Call with the signed-in key. */
export function call(action, params = {}) {
  const key = currentKey();
  if (!key) return Promise.reject(new ApiError("AuthFailure", "Not signed in."));
  return callWith(key, action, params);
}

/**
 * The key's sub-application. No action returns it, but naming a sub-application the key does
 * not belong to is refused with a message that says which one it does belong to.
 */
export async function discoverSubAppId(key) {
  try {
    await callWith(key, "DescribeEventConfig", { SubAppId: 1 });
    return 1;
  } catch (error) {
    const match = /SubAppId (\d+)/.exec(error.message || "");
    return match ? Number(match[1]) : null;
  }
}
