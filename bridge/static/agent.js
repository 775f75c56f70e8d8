// The agent page: log in, set a state, take waiting chats, reply, and read any
// conversation of the customer across channels (voice calls show the IVR transcript
// and the call's timeline); a call ringing the agent's phone pops up who calls, why, what
// they told the IVR and their history (screen_pop), and once connected the live
// transcript shows what the caller and the agent say (transcript). Actions are REST calls
// (CSRF-protected); /ws/agent only pushes what happens (see bridge/ws_agent.py), and
// carries the signalling of the phone in this browser (phone.js).
import {
  ApiError,
  api,
  appendMessage,
  byId,
  element,
  formatTime,
  setCsrfToken,
  socketUrl,
  wireLogin,
} from "/static/api.js";
import { createPhone } from "/static/phone.js";

const ENDED = new Set(["closed", "abandoned"]);
const CHANNEL_NAMES = { voice: "Voice call", webchat: "Web chat" };

const ui = {
  login: byId("login"),
  loginForm: byId("login-form"),
  loginError: byId("login-error"),
  desk: byId("desk"),
  who: byId("who"),
  userName: byId("user-name"),
  state: byId("agent-state"),
  logout: byId("logout"),
  connection: byId("connection"),
  waiting: byId("waiting"),
  waitingEmpty: byId("waiting-empty"),
  mine: byId("mine"),
  openForm: byId("open-form"),
  title: byId("conversation-title"),
  meta: byId("conversation-meta"),
  messages: byId("messages"),
  replyForm: byId("reply-form"),
  replyText: byId("reply-text"),
  closeButton: byId("close-conversation"),
  conversationError: byId("conversation-error"),
  eventsBox: byId("events-box"),
  events: byId("events"),
  customerName: byId("customer-name"),
  identities: byId("identities"),
  history: byId("history"),
  pop: byId("screen-pop"),
  popTitle: byId("screen-pop-title"),
  popState: byId("screen-pop-state"),
  popCaller: byId("screen-pop-caller"),
  popIntent: byId("screen-pop-intent"),
  popQueue: byId("screen-pop-queue"),
  popWords: byId("screen-pop-words"),
  popHistory: byId("screen-pop-history"),
  popNoHistory: byId("screen-pop-no-history"),
  popOpen: byId("screen-pop-open"),
  popDismiss: byId("screen-pop-dismiss"),
  live: byId("live-transcript"),
  liveState: byId("live-transcript-state"),
  liveLines: byId("live-transcript-lines"),
  liveEmpty: byId("live-transcript-empty"),
};

let me = null;
let socket = null;
let retryMs = 500;
let current = null; // the open conversation (schema Conversation)
const waiting = new Map();
const mine = new Map();
let pop = null; // the screen pop shown: {call_id, conversation_id, connected}
let live = null; // the live transcript shown: {call_id, lines: Map("speaker:offset_ms" -> li)}
const phone = createPhone((frame) => {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
});

// ------------------------------------------------------------------ session

async function start() {
  try {
    enter(await api("GET", "/api/me"));
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    showLogin();
  }
}

function showLogin() {
  me = null;
  if (socket) socket.close();
  socket = null;
  phone.disconnected();
  ui.desk.hidden = true;
  ui.who.hidden = true;
  hidePop();
  ui.login.hidden = false;
  ui.connection.textContent = "";
  byId("login-name").focus();
}

function enter(who) {
  me = who;
  setCsrfToken(who.csrf_token);
  ui.login.hidden = true;
  ui.desk.hidden = false;
  ui.who.hidden = false;
  ui.userName.textContent = who.name;
  ui.state.value = who.state || "offline";
  ui.state.disabled = !who.roles.includes("agent");
  connectSocket();
  refreshLists().catch(showError);
}

wireLogin(ui.loginForm, ui.loginError, ui.logout, enter, showLogin);

ui.state.addEventListener("change", async () => {
  try {
    const agent = await api("PUT", `/api/agents/${encodeURIComponent(me.name)}/state`, {
      state: ui.state.value,
    });
    ui.state.value = agent.state;
  } catch (error) {
    showError(error);
  }
});

// -------------------------------------------------------------------- lists

async function refreshLists() {
  const queued = await api("GET", "/api/conversations?status=queued&channel=webchat");
  waiting.clear();
  for (const conversation of queued.conversations) waiting.set(conversation.id, conversation);
  mine.clear();
  if (me.roles.includes("agent")) {
    const own = await api(
      "GET",
      `/api/conversations?agent=${encodeURIComponent(me.name)}&status=connected`,
    );
    for (const conversation of own.conversations) mine.set(conversation.id, conversation);
  }
  renderLists();
}

function conversationLabel(conversation) {
  const channel = CHANNEL_NAMES[conversation.channel] || conversation.channel;
  return `${channel} #${conversation.id} · ${formatTime(conversation.started_at)}`;
}

function renderLists() {
  ui.waiting.replaceChildren();
  for (const conversation of [...waiting.values()].sort((a, b) => a.id - b.id)) {
    const item = element("li");
    item.dataset.id = String(conversation.id);
    const open = element("button", conversationLabel(conversation), "link");
    open.type = "button";
    open.addEventListener("click", () => openConversation(conversation.id));
    const take = element("button", "Take");
    take.type = "button";
    take.setAttribute("aria-label", `Take chat #${conversation.id}`);
    take.disabled = !me.roles.includes("agent");
    take.addEventListener("click", () => takeConversation(conversation.id));
    item.append(open, take);
    ui.waiting.append(item);
  }
  ui.waitingEmpty.hidden = waiting.size > 0;
  ui.mine.replaceChildren();
  for (const conversation of mine.values()) {
    const item = element("li");
    const open = element("button", conversationLabel(conversation), "link");
    open.type = "button";
    open.addEventListener("click", () => openConversation(conversation.id));
    if (current && current.id === conversation.id) item.classList.add("current");
    item.append(open);
    ui.mine.append(item);
  }
}

function trackConversation(conversation) {
  if (conversation.status === "queued" && !conversation.agent && conversation.channel === "webchat") {
    waiting.set(conversation.id, conversation);
  } else {
    waiting.delete(conversation.id);
  }
  if (me && conversation.agent === me.name && !ENDED.has(conversation.status)) {
    mine.set(conversation.id, conversation);
  } else {
    mine.delete(conversation.id);
  }
  renderLists();
}

async function takeConversation(id) {
  try {
    const conversation = await api("POST", `/api/conversations/${id}/take`);
    trackConversation(conversation);
    await openConversation(id);
    ui.replyText.focus();
  } catch (error) {
    showError(error);
  }
}

ui.openForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const id = Number(ui.openForm.elements.id.value);
  if (Number.isInteger(id) && id > 0) openConversation(id);
});

// ------------------------------------------------------------- conversation

function showError(error) {
  if (error instanceof ApiError && error.status === 401) {
    showLogin(); // the session ended (expired, or logged out elsewhere)
    ui.loginError.textContent = error.message;
    return;
  }
  ui.conversationError.textContent = error.message || String(error);
}

function renderConversation(conversation) {
  current = conversation;
  const channel = CHANNEL_NAMES[conversation.channel] || conversation.channel;
  ui.title.textContent = `${channel} #${conversation.id}`;
  const parts = [`status ${conversation.status}`, `started ${formatTime(conversation.started_at)}`];
  if (conversation.intent) parts.push(`intent ${conversation.intent}`);
  if (conversation.queue) parts.push(`queue ${conversation.queue}`);
  if (conversation.agent) parts.push(`agent ${conversation.agent}`);
  ui.meta.textContent = parts.join(" · ");
  const mineOpen =
    me && conversation.agent === me.name && conversation.channel === "webchat" &&
    !ENDED.has(conversation.status);
  ui.replyForm.hidden = !mineOpen;
  ui.closeButton.hidden = !mineOpen;
  renderLists();
}

function renderEvent(event) {
  const details = Object.entries(event.data || {})
    .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(", ");
  const item = element("li", `${new Date(event.at * 1000).toLocaleTimeString()} ${event.kind}`);
  if (details) item.append(element("span", ` (${details})`, "muted"));
  return item;
}

async function openConversation(id) {
  ui.conversationError.textContent = "";
  let detail;
  try {
    detail = await api("GET", `/api/conversations/${id}`);
  } catch (error) {
    showError(error);
    return;
  }
  ui.messages.replaceChildren();
  for (const message of detail.messages) appendMessage(ui.messages, message);
  ui.events.replaceChildren(...detail.events.map(renderEvent));
  ui.eventsBox.hidden = detail.events.length === 0;
  ui.eventsBox.open = detail.conversation.channel === "voice";
  renderConversation(detail.conversation);
  await renderCustomer(detail.customer).catch(showError);
}

async function renderCustomer(customer) {
  ui.identities.replaceChildren();
  ui.history.replaceChildren();
  if (!customer) {
    ui.customerName.textContent = "—";
    return;
  }
  ui.customerName.textContent = customer.display_name || `Customer #${customer.id}`;
  for (const identity of customer.identities) {
    ui.identities.append(element("li", `${identity.kind}: ${identity.value}`));
  }
  const page = await api("GET", `/api/conversations?customer_id=${customer.id}&limit=50`);
  for (const conversation of page.conversations) {
    const item = element("li");
    if (current && conversation.id === current.id) item.classList.add("current");
    let label = conversationLabel(conversation);
    if (conversation.intent) label += ` · ${conversation.intent}`;
    const open = element("button", label, "link");
    open.type = "button";
    open.addEventListener("click", () => openConversation(conversation.id));
    item.append(open, element("span", conversation.status, "muted"));
    ui.history.append(item);
  }
}

ui.replyForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = ui.replyText.value.trim();
  if (!text || !current) return;
  try {
    const posted = await api("POST", `/api/conversations/${current.id}/messages`, { text });
    appendMessage(ui.messages, posted.message);
    ui.replyText.value = "";
    ui.conversationError.textContent = "";
  } catch (error) {
    showError(error);
  }
});

ui.replyText.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    ui.replyForm.requestSubmit();
  }
});

ui.closeButton.addEventListener("click", async () => {
  if (!current) return;
  try {
    const conversation = await api("POST", `/api/conversations/${current.id}/close`);
    trackConversation(conversation);
    renderConversation(conversation);
  } catch (error) {
    showError(error);
  }
});

// -------------------------------------------------------------- screen pop

// A call rings this agent (CallRecords.offered): who calls, why, what they said to the
// IVR and their earlier conversations, until the offer is withdrawn (call.cancel) or,
// once the agent took the call, until dismissed.
function showPop(frame) {
  pop = { call_id: frame.call_id, conversation_id: frame.conversation_id, connected: false };
  const customer = frame.customer || {};
  const identities = (customer.identities || []).filter((identity) => identity && identity.value);
  const phoneIdentity = identities.find((identity) => identity.kind === "phone");
  const name = customer.display_name || (phoneIdentity || identities[0] || {}).value || "a caller";
  ui.popTitle.textContent = `Call from ${name}`;
  const caller = [customer.display_name || ""];
  for (const identity of identities) {
    if (identity.value !== customer.display_name) caller.push(identity.value);
  }
  ui.popCaller.textContent = caller.filter(Boolean).join(" · ") || "unknown";
  let intent = frame.intent || "not recognised";
  if (typeof frame.confidence === "number") intent += ` (confidence ${frame.confidence.toFixed(2)})`;
  ui.popIntent.textContent = intent;
  ui.popQueue.textContent = frame.queue || "—";

  // The caller's own words: the customer's lines of the IVR dialogue, else the transcript.
  const said = (frame.dialogue || []).filter((line) => line.speaker === "customer");
  const words = said.length
    ? said.map((line) => {
        const item = element("li", line.text);
        if (typeof line.confidence === "number") {
          item.append(element("span", ` (${line.confidence.toFixed(2)})`, "muted"));
        }
        return item;
      })
    : (frame.transcript || []).map((text) => element("li", String(text)));
  ui.popWords.replaceChildren(...words);
  if (!words.length) ui.popWords.append(element("li", "Nothing recognised.", "muted"));

  ui.popHistory.replaceChildren(
    ...(frame.history || []).map((conversation) => {
      const item = element("li");
      const open = element("button", conversationLabel(conversation), "link");
      open.type = "button";
      open.addEventListener("click", () => openConversation(conversation.id));
      const about = [conversation.status, conversation.intent].filter(Boolean).join(" · ");
      item.append(open, element("span", about, "muted"));
      return item;
    }),
  );
  ui.popNoHistory.hidden = ui.popHistory.childElementCount > 0;
  ui.popOpen.hidden = !frame.conversation_id;
  ui.pop.classList.remove("connected");
  ui.popState.textContent = "Ringing on your phone";
  ui.pop.hidden = false;
}

function hidePop() {
  pop = null;
  ui.pop.hidden = true;
  ui.pop.classList.remove("connected");
}

// call.cancel (agent:NAME): the offer was withdrawn; a call the agent took stays shown.
function withdrawPop(frame) {
  if (pop && pop.call_id === frame.call_id && !pop.connected) hidePop();
}

// call.event (agents): the popped call connected to this agent, or ended. The server
// publishes call.cancel at once but screen_pop after its store writes, so a pop can come
// after its own cancel; such a pop goes when the call connects elsewhere or ends.
function popCallEvent(frame) {
  if (!pop || pop.call_id !== frame.call_id) return;
  const data = frame.data || {};
  if (frame.kind === "connected" && me && data.agent === me.name) {
    pop.connected = true;
    ui.pop.classList.add("connected");
    ui.popState.textContent = "Connected";
  } else if (frame.kind === "connected" && !pop.connected) {
    hidePop(); // another agent took it
  } else if (frame.kind === "ended") {
    if (pop.connected) ui.popState.textContent = "Call ended";
    else hidePop(); // the caller hung up while it rang
  }
}

ui.popOpen.addEventListener("click", () => {
  if (pop && pop.conversation_id) openConversation(pop.conversation_id);
});
ui.popDismiss.addEventListener("click", hidePop);

// --------------------------------------------------------- live transcript

// transcript (agent:NAME): a line of the call as the recognizer hears it, partials first;
// the final replaces them in place (same speaker and offset_ms), and an empty final
// withdraws them. transcript.status: the call's transcript is live, unavailable or ended.
// The lines stay after the call until the next call's transcript starts.
const LIVE_STATES = {
  live: "Listening",
  unavailable: "Not available for this call: the recognizer is busy",
  ended: "Call ended",
};
const LIVE_SPEAKERS = { customer: "Caller", agent: "You" };

function liveFor(callId) {
  if (live && live.call_id === callId) return live;
  live = { call_id: callId, lines: new Map() };
  ui.liveLines.replaceChildren();
  ui.liveEmpty.hidden = false;
  ui.live.hidden = false;
  return live;
}

function liveStatus(frame) {
  if (frame.state === "ended" && (!live || live.call_id !== frame.call_id)) return;
  liveFor(frame.call_id);
  ui.live.dataset.state = frame.state;
  ui.liveState.textContent = LIVE_STATES[frame.state] || String(frame.state);
}

function offsetText(offsetMs) {
  const seconds = Math.max(0, Math.floor(Number(offsetMs) / 1000) || 0);
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

function liveLine(frame) {
  const shown = liveFor(frame.call_id);
  const speaker = frame.speaker === "agent" ? "agent" : "customer";
  const offsetMs = Number(frame.offset_ms) || 0;
  const key = `${speaker}:${offsetMs}`;
  const box = ui.liveLines.parentElement;
  const following = box.scrollHeight - box.scrollTop - box.clientHeight < 24; // at the end
  let item = shown.lines.get(key);
  if (!frame.text) {
    if (item) item.remove();
    shown.lines.delete(key);
  } else {
    if (!item) {
      item = element("li", undefined, speaker);
      item.dataset.speaker = speaker;
      item.dataset.offsetMs = String(offsetMs);
      item.append(
        element("span", offsetText(offsetMs), "muted time"),
        " ",
        element("span", LIVE_SPEAKERS[speaker], "speaker"),
        " ",
        element("span", "", "text"),
      );
      // In the order the lines were spoken: before the first that started later.
      const later = [...ui.liveLines.children].find((li) => Number(li.dataset.offsetMs) > offsetMs);
      ui.liveLines.insertBefore(item, later || null);
      shown.lines.set(key, item);
    }
    item.querySelector(".text").textContent = String(frame.text);
    item.classList.toggle("partial", !frame.final);
    item.dataset.final = frame.final ? "true" : "false";
  }
  ui.liveEmpty.hidden = ui.liveLines.childElementCount > 0;
  if (following) box.scrollTop = box.scrollHeight; // unless the agent scrolled back to read
}

// ----------------------------------------------------------------- pushes

function onPush(frame) {
  // call.cancel withdraws a SIP phone's offer as well as the browser phone's: both see it.
  if (frame.type === "call.cancel") withdrawPop(frame);
  if (phone.onPush(frame)) return;
  switch (frame.type) {
    case "conversation.updated":
      trackConversation(frame.conversation);
      if (current && current.id === frame.conversation.id) renderConversation(frame.conversation);
      break;
    case "chat.message":
      if (current && current.id === frame.conversation_id) {
        appendMessage(ui.messages, frame.message);
      }
      break;
    case "agent.state":
      if (me && frame.agent === me.name) ui.state.value = frame.state;
      break;
    case "screen_pop":
      showPop(frame);
      break;
    case "transcript":
      liveLine(frame);
      break;
    case "transcript.status":
      liveStatus(frame);
      break;
    case "call.event":
      popCallEvent(frame);
      if (current && current.id === frame.conversation_id) {
        ui.events.append(renderEvent({ kind: frame.kind, at: frame.at, data: frame.data }));
        ui.eventsBox.hidden = false;
      }
      break;
    case "session.ended":
      showLogin();
      break;
    default:
      break;
  }
}

function connectSocket() {
  if (socket) return;
  const opened = new WebSocket(socketUrl("/ws/agent"));
  socket = opened;
  opened.addEventListener("open", () => {
    retryMs = 500;
    ui.connection.textContent = "Live";
    phone.connected();
  });
  opened.addEventListener("message", (event) => onPush(JSON.parse(event.data)));
  opened.addEventListener("close", (event) => {
    if (socket !== opened) return;
    socket = null;
    phone.disconnected();
    if (!me || event.code === 4401) return;
    ui.connection.textContent = "Reconnecting…";
    setTimeout(() => {
      if (me) {
        connectSocket();
        refreshLists().catch(showError);
      }
    }, retryMs);
    retryMs = Math.min(retryMs * 2, 10000);
  });
}

start();
