// The QA page: search call transcripts and chats (GET /api/search), open a result, hear
// the call from the matched word (GET /api/recordings/{id}/audio, Range requests) beside
// its transcript, where clicking a word seeks the player to it. Chats show their
// messages instead. All text comes redacted from the server (admins may ask otherwise
// over the API) and is put in the page as text nodes, never as HTML.
import {
  ApiError,
  api,
  byId,
  element,
  formatTime,
  messageItem,
  setCsrfToken,
  wireLogin,
} from "/static/api.js";

const CHANNEL_NAMES = { voice: "Voice call", webchat: "Web chat" };
const SPEAKER_NAMES = { customer: "Caller", agent: "Agent", ivr: "IVR", system: "System" };
const PAGE_SIZE = 20;
const HAVE_METADATA = 1; // HTMLMediaElement.HAVE_METADATA

const ui = {
  login: byId("login"),
  loginForm: byId("login-form"),
  loginError: byId("login-error"),
  noRole: byId("no-role"),
  desk: byId("desk"),
  who: byId("who"),
  userName: byId("user-name"),
  logout: byId("logout"),
  searchForm: byId("search-form"),
  searchError: byId("search-error"),
  resultCount: byId("result-count"),
  results: byId("results"),
  more: byId("more"),
  title: byId("review-title"),
  meta: byId("review-meta"),
  playerBox: byId("player-box"),
  player: byId("player"),
  recordingStatus: byId("recording-status"),
  transcript: byId("transcript"),
  chatBox: byId("chat-box"),
  chatMessages: byId("chat-messages"),
  reviewError: byId("review-error"),
};

let lastQuery = null; // the URLSearchParams of the search shown, for "More results"
let nextOffset = null;
let recordings = new Map(); // id -> Recording of the open conversation
let playing = null; // the Recording loaded in the player
let pendingSeekMs = null; // applied once the player knows the duration
let timedWords = []; // [{recording_id, start_ms, end_ms, node}] of the transcript, in time order
let spokenWord = null;

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
  ui.desk.hidden = true;
  ui.who.hidden = true;
  ui.noRole.hidden = true;
  ui.login.hidden = false;
  unloadPlayer();
  byId("login-name").focus();
}

function enter(who) {
  setCsrfToken(who.csrf_token);
  ui.login.hidden = true;
  ui.who.hidden = false;
  ui.userName.textContent = who.name;
  const allowed = who.roles.includes("qa") || who.roles.includes("admin");
  ui.noRole.hidden = allowed;
  ui.desk.hidden = !allowed;
  if (allowed) {
    byId("q").focus();
    openFromAddress();
  }
}

wireLogin(ui.loginForm, ui.loginError, ui.logout, enter, showLogin);

/** A result's link (/qa?conversation=ID&recording=ID&offset_ms=MS) opens it at the match. */
function openFromAddress() {
  const params = new URLSearchParams(location.search);
  const id = Number(params.get("conversation"));
  if (!Number.isSafeInteger(id) || id < 1) return;
  const recording = params.has("recording") ? Number(params.get("recording")) : null;
  const offset = params.has("offset_ms") ? Number(params.get("offset_ms")) : null;
  openConversation(id, recording, Number.isFinite(offset) ? offset : null).catch(showReviewError);
}

// ------------------------------------------------------------------- search

/** The form as /api/search parameters; dates are local days, "to" includes its day. */
function searchParams() {
  const form = ui.searchForm.elements;
  const params = new URLSearchParams({ q: form.q.value.trim(), limit: String(PAGE_SIZE) });
  if (form.since.value) params.set("since", String(localDay(form.since.value)));
  if (form.until.value) params.set("until", String(localDay(form.until.value) + 86400));
  for (const name of ["queue", "agent", "intent", "channel"]) {
    const value = form[name].value.trim();
    if (value) params.set(name, value);
  }
  for (const name of ["min_duration_s", "max_duration_s"]) {
    if (form[name].value !== "") params.set(name, form[name].value);
  }
  return params;
}

function localDay(isoDate) {
  return new Date(`${isoDate}T00:00:00`).getTime() / 1000;
}

ui.searchForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  lastQuery = searchParams();
  ui.results.replaceChildren();
  ui.resultCount.textContent = "Searching…";
  await showPage(0);
});

ui.more.addEventListener("click", () => showPage(nextOffset));

async function showPage(offset) {
  ui.searchError.textContent = "";
  ui.more.hidden = true;
  const params = new URLSearchParams(lastQuery);
  params.set("offset", String(offset));
  let page;
  try {
    page = await api("GET", `/api/search?${params}`);
  } catch (error) {
    ui.resultCount.textContent = "";
    ui.searchError.textContent = error.message; // a query syntax error says where
    if (error.status === 401) showLogin();
    return;
  }
  for (const hit of page.hits) ui.results.append(resultItem(hit));
  const shown = ui.results.children.length;
  if (shown === 0) ui.resultCount.textContent = "No matches.";
  else if (page.total !== null) ui.resultCount.textContent = `${page.total} matches, best first.`;
  else ui.resultCount.textContent = `${shown} matches shown, best first.`;
  nextOffset = page.next_offset;
  ui.more.hidden = nextOffset === null;
}

function resultItem(hit) {
  const item = element("li", null, "result");
  const facts = [
    `${CHANNEL_NAMES[hit.channel] || hit.channel} #${hit.conversation_id}`,
    formatTime(hit.started_at),
  ];
  for (const fact of [hit.queue, hit.agent, hit.intent]) if (fact) facts.push(fact);
  if (hit.offset_ms !== null) facts.push(`at ${clock(hit.offset_ms)}`);
  const open = element("button", facts.join(" · "), "link");
  open.type = "button";
  open.addEventListener("click", () => {
    history.replaceState(null, "", hit.link);
    markCurrent(item);
    openConversation(hit.conversation_id, hit.recording_id, hit.offset_ms, hit).catch(
      showReviewError,
    );
  });
  item.append(open, snippet(hit.snippet));
  return item;
}

/** The snippet as text nodes, the matched words in <mark>. */
function snippet(fragments) {
  const paragraph = element("p", null, "snippet");
  for (const fragment of fragments) {
    paragraph.append(
      fragment.match ? element("mark", fragment.text) : document.createTextNode(fragment.text),
    );
  }
  return paragraph;
}

function markCurrent(item) {
  for (const other of ui.results.querySelectorAll("li.current")) other.classList.remove("current");
  item.classList.add("current");
}

// ------------------------------------------------------------------- review

function showReviewError(error) {
  ui.reviewError.textContent = error.message;
  if (error instanceof ApiError && error.status === 401) showLogin();
}

/** Open a conversation: a call's player and transcript, or a chat's messages. */
async function openConversation(id, recordingId, offsetMs, hit) {
  ui.reviewError.textContent = "";
  const detail = await api("GET", `/api/conversations/${id}`);
  const conversation = detail.conversation;
  ui.title.textContent = `${CHANNEL_NAMES[conversation.channel] || conversation.channel} #${id}`;
  const facts = [formatTime(conversation.started_at)];
  for (const fact of [conversation.queue, conversation.agent, conversation.intent]) {
    if (fact) facts.push(fact);
  }
  if (detail.customer && detail.customer.display_name) facts.push(detail.customer.display_name);
  ui.meta.textContent = facts.join(" · ");
  ui.transcript.replaceChildren();
  ui.chatMessages.replaceChildren();
  ui.recordingStatus.textContent = "";
  timedWords = [];
  spokenWord = null;
  if (conversation.channel !== "voice") {
    unloadPlayer();
    showMessages(detail.messages, hit && hit.kind === "message" ? hit.item_id : null);
    return;
  }
  const transcript = await api("GET", `/api/conversations/${id}/transcript`);
  recordings = new Map(transcript.recordings.map((r) => [r.id, r]));
  const recording =
    recordings.get(recordingId) ||
    transcript.recordings.find((r) => r.deleted_at === null) ||
    transcript.recordings[0];
  if (!recording) {
    unloadPlayer();
    ui.recordingStatus.textContent = "This call has no recording; what the IVR heard:";
    showMessages(detail.messages, null);
    return;
  }
  ui.recordingStatus.textContent = recordingStatus(recording);
  if (recording.audio_url) load(recording, offsetMs);
  else unloadPlayer();
  showTranscript(transcript.segments);
  if (offsetMs !== null) markMatch(recording.id, offsetMs);
}

/** Outline the word the search matched (the one starting at its offset) and show it. */
function markMatch(recordingId, offsetMs) {
  const word = timedWords.find((w) => w.recording_id === recordingId && w.start_ms === offsetMs);
  if (!word) return;
  word.node.classList.add("match");
  word.node.scrollIntoView({ block: "nearest" });
}

function recordingStatus(recording) {
  const parts = [];
  if (recording.deleted_at !== null) {
    parts.push(`The audio was deleted on ${formatTime(recording.deleted_at)} (retention).`);
  }
  const job = recording.transcription;
  if (job && job.status !== "done") {
    parts.push(`Transcription ${job.status} (attempt ${job.attempts} of ${job.max_attempts}).`);
  }
  return parts.join(" ");
}

function showMessages(messages, matchedId) {
  ui.transcript.hidden = true;
  ui.chatBox.hidden = false;
  for (const message of messages) {
    const item = messageItem(message);
    if (message.id === matchedId) item.classList.add("match");
    ui.chatMessages.append(item);
  }
  const matched = ui.chatMessages.querySelector("li.match");
  if (matched) matched.scrollIntoView({ block: "center" });
}

/** Both channels in time order: who spoke, when, and each word a button that seeks. */
function showTranscript(segments) {
  ui.chatBox.hidden = true;
  ui.transcript.hidden = false;
  if (segments.length === 0) {
    ui.transcript.append(element("li", "No transcript yet.", "muted"));
    return;
  }
  for (const segment of segments) {
    const item = element("li", null, segment.channel);
    const who = SPEAKER_NAMES[segment.speaker] || segment.speaker;
    item.append(element("span", `${who} · ${clock(segment.start_ms)}`, "who"));
    const words = element("p", null, "words");
    for (const word of segment.words) {
      const button = element("button", word.text, "word");
      button.type = "button";
      button.dataset.startMs = String(word.start_ms);
      button.title = clock(word.start_ms);
      button.addEventListener("click", () => seek(segment.recording_id, word.start_ms));
      words.append(button, " ");
      timedWords.push({
        recording_id: segment.recording_id,
        start_ms: word.start_ms,
        end_ms: word.end_ms,
        node: button,
      });
    }
    item.append(words);
    ui.transcript.append(item);
  }
  timedWords.sort((a, b) => a.start_ms - b.start_ms);
}

// ------------------------------------------------------------------- player

function load(recording, offsetMs) {
  playing = recording;
  pendingSeekMs = offsetMs;
  ui.playerBox.hidden = false;
  ui.player.src = recording.audio_url;
  ui.player.dataset.recordingId = String(recording.id);
}

function unloadPlayer() {
  playing = null;
  pendingSeekMs = null;
  ui.player.pause();
  ui.player.removeAttribute("src");
  delete ui.player.dataset.recordingId;
  ui.player.load();
  ui.playerBox.hidden = true;
}

/** Seek to a word: the player's time, loading its recording first if another is in it. */
function seek(recordingId, ms) {
  const recording = recordings.get(recordingId);
  if (!recording || !recording.audio_url) return;
  if (!playing || playing.id !== recordingId) {
    load(recording, ms);
  } else if (ui.player.readyState >= HAVE_METADATA) {
    ui.player.currentTime = ms / 1000;
  } else {
    pendingSeekMs = ms;
  }
}

ui.player.addEventListener("loadedmetadata", () => {
  if (pendingSeekMs !== null) ui.player.currentTime = pendingSeekMs / 1000;
  pendingSeekMs = null;
});

ui.player.addEventListener("error", () => {
  if (!ui.player.getAttribute("src")) return;
  ui.recordingStatus.textContent = "The audio could not be loaded.";
});

// The word being heard is underlined as the player moves.
ui.player.addEventListener("timeupdate", () => {
  const ms = ui.player.currentTime * 1000;
  let now = null;
  for (const word of timedWords) {
    if (!playing || word.recording_id !== playing.id) continue;
    if (word.start_ms > ms) break;
    if (ms < word.end_ms) now = word.node;
  }
  if (now === spokenWord) return;
  if (spokenWord) spokenWord.classList.remove("now");
  if (now) now.classList.add("now");
  spokenWord = now;
});

/** m:ss.t of a time in the recording. */
function clock(ms) {
  const tenths = Math.floor(ms / 100);
  const minutes = Math.floor(tenths / 600);
  const seconds = Math.floor((tenths % 600) / 10);
  return `${minutes}:${String(seconds).padStart(2, "0")}.${tenths % 10}`;
}

start();
