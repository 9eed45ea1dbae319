// Calls to the REST API (/api/v1) from the pages, with the signed-in
// session: the browser sends the session cookie, and every write carries
// the page's CSRF token (from <meta name="csrf-token">) in x-csrf-token.
// Errors come back as ApiError with the server's ERR_* code and message.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// `method` `path` (below /api/v1) with an optional JSON `body`; resolves to
// the parsed JSON answer (null for an empty one).
export async function api(method, path, body, options = {}) {
  const headers = { accept: "application/json", ...(options.headers || {}) };
  if (method !== "GET" && method !== "HEAD") headers["x-csrf-token"] = csrfToken();
  let payload = options.rawBody;
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: payload,
    credentials: "same-origin",
    signal: options.signal,
  });
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const err = (data && data.error) || {};
    throw new ApiError(
      response.status,
      err.code || `HTTP_${response.status}`,
      err.message || response.statusText || "request failed",
    );
  }
  return data;
}
