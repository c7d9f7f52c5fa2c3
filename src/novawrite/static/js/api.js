// The one way pages talk to the JSON API: cookie session, CSRF header on unsafe
// methods, errors as ApiError with the contract's {error: {code, message, details}}.

export class ApiError extends Error {
  constructor(status, body) {
    const error = body?.error ?? {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "http_error";
    this.details = error.details;
    this.error = error;
  }
}

export function readCookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

const UNSAFE = new Set(["POST", "PATCH", "PUT", "DELETE"]);

export function loginUrl() {
  const here = location.pathname + location.search;
  return `/login?next=${encodeURIComponent(here)}`;
}

/**
 * api("GET", "/api/novels") -> parsed JSON body (null for 204).
 * Options: body (JSON-encoded), headers, signal, raw (return the Response itself,
 * for ETag/304 handling), authRedirect (default true: a 401 sends the page to /login).
 */
export async function api(method, path, { body, headers = {}, signal, raw = false, authRedirect = true } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin", signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (UNSAFE.has(method)) {
    const csrf = readCookie("nw_csrf");
    if (csrf) init.headers["X-CSRF-Token"] = csrf;
  }
  const response = await fetch(path, init);
  if (response.status === 401 && authRedirect) {
    location.assign(loginUrl());
    throw new ApiError(401, { error: { code: "unauthorized" } });
  }
  if (raw) return response;
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** Read a text/event-stream response with fetch, calling onEvent({id, event, data}). */
export async function readEventStream(path, onEvent, signal) {
  const response = await fetch(path, { headers: { Accept: "text/event-stream" }, credentials: "same-origin", signal });
  if (!response.ok || !response.body) throw new ApiError(response.status, null);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const message = { id: null, event: "message", data: "" };
      const data = [];
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") data.push(val);
        else if (field === "event") message.event = val;
        else if (field === "id") message.id = val;
      }
      if (!data.length) continue;
      message.data = data.join("\n");
      onEvent(message);
    }
  }
}
