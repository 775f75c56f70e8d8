// The phone in this browser: the server offers each call over /ws/agent (call.offer, made
// by hotline.webrtc with aiortc), this page answers with WebRTC; the caller's audio plays
// in <audio id="call-audio">, the microphone goes back. Signalling frames: phone.ready and
// phone.off (the switch), call.answer {call_id, sdp}, call.reject and call.hangup {call_id}.
import { byId, element } from "/static/api.js";

const GATHER_TIMEOUT_MS = 3000;

export function createPhone(send) {
  const ui = {
    toggle: byId("phone-on"),
    status: byId("phone-status"),
    panel: byId("call"),
    title: byId("call-title"),
    context: byId("call-context"),
    transcript: byId("call-transcript"),
    answer: byId("call-answer"),
    reject: byId("call-reject"),
    hangup: byId("call-hangup"),
    state: byId("call-state"),
    audio: byId("call-audio"),
  };
  let wanted = false; // the switch is on
  let ringing = null; // the offer shown: {call_id, sdp, context}
  let active = null; // the call in progress: {call_id, pc, microphone}

  function setState(state, text) {
    ui.panel.dataset.state = state;
    ui.panel.classList.toggle("connected", state === "connected");
    ui.state.textContent = text;
  }

  function showOffer(frame) {
    ringing = frame;
    const context = frame.context || {};
    const customer = context.customer || {};
    const from = customer.display_name || customer.phone || "a caller";
    ui.title.textContent = `Incoming call from ${from}`;
    ui.context.textContent = [context.intent, context.queue].filter(Boolean).join(" · ");
    ui.transcript.replaceChildren(
      ...(context.transcript || []).map((line) => element("li", String(line))),
    );
    ui.answer.hidden = false;
    ui.reject.hidden = false;
    ui.answer.disabled = false;
    ui.hangup.hidden = true;
    ui.panel.hidden = false;
    setState("ringing", "Ringing");
    ui.answer.focus();
  }

  function hidePanel(text) {
    ringing = null;
    ui.panel.hidden = true;
    setState("idle", "");
    if (text) ui.status.textContent = text;
  }

  function stopMedia() {
    if (!active) return;
    active.pc.close();
    for (const track of active.microphone.getTracks()) track.stop();
    ui.audio.srcObject = null;
    active = null;
  }

  function end(text) {
    stopMedia();
    hidePanel(text);
    ui.toggle.disabled = false;
  }

  function gathered(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        if (pc.iceGatheringState === "complete") resolve();
      };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, GATHER_TIMEOUT_MS); // answer with what was found by then
    });
  }

  async function answer() {
    const call = ringing;
    if (!call || active) return;
    ui.answer.disabled = true;
    setState("answering", "Connecting…");
    let microphone = null;
    let pc = null;
    try {
      microphone = await navigator.mediaDevices.getUserMedia({ audio: true });
      pc = new RTCPeerConnection({ iceServers: [] });
      active = { call_id: call.call_id, pc, microphone };
      pc.addEventListener("track", (event) => {
        ui.audio.srcObject = event.streams[0] || new MediaStream([event.track]);
      });
      pc.addEventListener("connectionstatechange", () => {
        if (!active || active.pc !== pc) return;
        if (pc.connectionState === "connected") setState("connected", "Connected");
        if (pc.connectionState === "failed") {
          send({ type: "call.hangup", call_id: call.call_id });
          end("The call's connection failed");
        }
      });
      await pc.setRemoteDescription({ type: "offer", sdp: call.sdp });
      for (const track of microphone.getAudioTracks()) pc.addTrack(track, microphone);
      await pc.setLocalDescription(await pc.createAnswer());
      await gathered(pc);
    } catch (error) {
      if (microphone) for (const track of microphone.getTracks()) track.stop();
      if (pc) pc.close();
      active = null;
      send({ type: "call.reject", call_id: call.call_id });
      hidePanel(`Could not answer: ${error.message || error}`);
      return;
    }
    if (!active || active.pc !== pc) return; // cancelled meanwhile
    send({ type: "call.answer", call_id: call.call_id, sdp: pc.localDescription.sdp });
    ringing = null;
    ui.answer.hidden = true;
    ui.reject.hidden = true;
    ui.hangup.hidden = false;
    ui.toggle.disabled = true; // hang up first
    ui.title.textContent = ui.title.textContent.replace("Incoming call", "Call");
    if (pc.connectionState !== "connected") setState("answering", "Connecting…");
  }

  ui.answer.addEventListener("click", () => answer());
  ui.reject.addEventListener("click", () => {
    if (!ringing) return;
    send({ type: "call.reject", call_id: ringing.call_id });
    hidePanel("Call rejected");
  });
  ui.hangup.addEventListener("click", () => {
    if (!active) return;
    send({ type: "call.hangup", call_id: active.call_id });
    end("Call ended");
  });
  ui.toggle.addEventListener("change", () => {
    wanted = ui.toggle.checked;
    send({ type: wanted ? "phone.ready" : "phone.off" });
    if (!wanted && ringing) hidePanel("");
  });

  return {
    // The socket (re)opened: the server forgot this page, so say again that the phone is on.
    connected() {
      if (wanted) send({ type: "phone.ready" });
    },
    // The socket closed: the server ends this page's call.
    disconnected() {
      if (active || ringing) end("Call ended: the connection to the server was lost");
    },
    // Handles the phone's frames; returns false for the others.
    onPush(frame) {
      const mine = (call) => call && call.call_id === frame.call_id;
      switch (frame.type) {
        case "phone.state":
          ui.status.textContent = frame.on ? "Phone on" : "";
          return true;
        case "phone.error":
          ui.status.textContent = frame.error;
          if (!frame.call_id) {
            wanted = false;
            ui.toggle.checked = false;
          }
          return true;
        case "call.offer":
          if (wanted && !active) showOffer(frame);
          return true;
        case "call.answered":
          if (mine(ringing) && !mine(active)) hidePanel("Answered on another page");
          return true;
        case "call.cancel":
          if (mine(ringing) && !mine(active)) hidePanel(`Missed call (${frame.reason})`);
          return true;
        case "call.hangup":
          if (mine(active)) end("The caller hung up");
          else if (mine(ringing)) hidePanel("");
          return true;
        default:
          return false;
      }
    },
  };
}
