// The customer's chat widget: one WebSocket (/ws/chat), no account. The visitor cookie
// set by /chat identifies the browser; see bridge/ws_chat.py for the frames.
import { appendMessage, byId, socketUrl } from "/static/api.js";

const ABOUT_FIELDS = ["name", "email", "phone"];
const NAMES = { customer: "You", agent: "Agent", system: "Notice", ivr: "Assistant" };
const messages = byId("messages");
const sendForm = byId("send-form");
const text = byId("message-text");
const sendButton = byId("send-button");
const sendError = byId("send-error");
const connection = byId("connection");
const chatStatus = byId("chat-status");
const aboutForm = byId("about-form");
const aboutStatus = byId("about-status");

let socket = null;
let retryMs = 500;
let clientCounter = 0;

function showConversation(conversation) {
  if (!conversation) {
    chatStatus.textContent = "Write to us and an agent will answer.";
  } else if (conversation.status === "queued") {
    chatStatus.textContent = "Waiting for an agent…";
  } else if (conversation.status === "connected") {
    chatStatus.textContent = conversation.agent
      ? `${conversation.agent} is chatting with you.`
      : "An agent is chatting with you.";
  } else if (conversation.status === "closed" || conversation.status === "abandoned") {
    chatStatus.textContent = "This chat has ended. Write again to start a new one.";
  }
}

function connect() {
  socket = new WebSocket(socketUrl("/ws/chat"));
  socket.addEventListener("open", () => {
    retryMs = 500;
    connection.textContent = "Connected";
    sendButton.disabled = false;
  });
  socket.addEventListener("message", (event) => {
    const frame = JSON.parse(event.data);
    switch (frame.type) {
      case "welcome":
        messages.replaceChildren();
        for (const message of frame.messages) appendMessage(messages, message, NAMES);
        showConversation(frame.conversation);
        break;
      case "message":
        appendMessage(messages, frame.message, NAMES);
        break;
      case "conversation":
        showConversation(frame.conversation);
        break;
      case "identified":
        aboutStatus.textContent = "Thank you, saved.";
        break;
      case "error":
        (ABOUT_FIELDS.includes(frame.field) ? aboutStatus : sendError).textContent = frame.field
          ? `${frame.field}: ${frame.error}`
          : frame.error;
        break;
      default:
        break;
    }
  });
  socket.addEventListener("close", (event) => {
    sendButton.disabled = true;
    if (event.code === 1008 || event.code === 4401) {
      connection.textContent = "Disconnected. Reload the page to chat again.";
      return;
    }
    connection.textContent = "Reconnecting…";
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 10000);
  });
}

sendForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const value = text.value.trim();
  if (!value || !socket || socket.readyState !== WebSocket.OPEN) return;
  sendError.textContent = "";
  clientCounter += 1;
  socket.send(JSON.stringify({ type: "message", text: value, client_id: `c${clientCounter}` }));
  text.value = "";
  text.focus();
});

aboutForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  const frame = { type: "hello" };
  for (const field of ABOUT_FIELDS) {
    const value = aboutForm.elements[field].value.trim();
    if (value) frame[field] = value;
  }
  aboutStatus.textContent = "";
  socket.send(JSON.stringify(frame));
});

connect();
