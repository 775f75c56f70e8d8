// The REST client of the pages: JSON in and out, the CSRF token on every unsafe call,
// errors as exceptions that carry the server's {error, field}.

let csrfToken = null;

/** Remember the session's CSRF token (from POST /api/login or GET /api/me). */
export function setCsrfToken(token) {
  csrfToken = token;
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : `HTTP ${status}`);
    this.status = status;
    this.field = body ? body.field : undefined;
  }
}

/** Call the API; resolves to the parsed JSON (or null for 204), rejects with ApiError. */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const options = { method, headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  if (method !== "GET" && csrfToken) {
    headers["X-CSRF-Token"] = csrfToken;
  }
  const response = await fetch(path, options);
  if (response.status === 204) return null;
  let parsed = null;
  try {
    parsed = await response.json();
  } catch {
    parsed = null;
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

/**
 * A staff page's login form and logout button: a good login resets the form and
 * calls enter(who); a bad one shows the server's reason in errorLine; logout
 * always ends in showLogin(), even when the server could not be reached.
 */
export function wireLogin(form, errorLine, logoutButton, enter, showLogin) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorLine.textContent = "";
    const name = form.elements.name.value.trim();
    const password = form.elements.password.value;
    try {
      const who = await api("POST", "/api/login", { name, password });
      form.reset();
      enter(who);
    } catch (error) {
      errorLine.textContent = error.message;
    }
  });
  logoutButton.addEventListener("click", async () => {
    try {
      await api("POST", "/api/logout");
    } finally {
      showLogin();
    }
  });
}

/** A WebSocket URL on this origin. */
export function socketUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

/** The element with this id (throws if the page lacks it: a bug, not a state). */
export function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`no element #${id}`);
  return element;
}

/** A new element with text content (never HTML: messages come from strangers). */
export function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

export function formatTime(seconds) {
  return new Date(seconds * 1000).toLocaleString();
}

const SPEAKERS = { customer: "Customer", agent: "Agent", ivr: "IVR", system: "System" };

/** A message as a list item: who, when, the text (and the recogniser's confidence). */
export function messageItem(message, speakerNames = SPEAKERS) {
  const item = element("li", null, message.speaker);
  item.dataset.id = String(message.id);
  let who = speakerNames[message.speaker] || message.speaker;
  who += ` · ${new Date(message.at * 1000).toLocaleTimeString()}`;
  if (typeof message.confidence === "number") {
    who += ` · confidence ${message.confidence.toFixed(2)}`;
  }
  item.append(element("span", who, "who"), element("span", message.text, "text"));
  return item;
}

/** Append a message to a list unless one with its id is already there; keep it in view. */
export function appendMessage(list, message, speakerNames) {
  if (list.querySelector(`li[data-id="${Number(message.id)}"]`)) return false;
  list.append(messageItem(message, speakerNames));
  const box = list.closest(".scroll");
  if (box) box.scrollTop = box.scrollHeight;
  return true;
}
