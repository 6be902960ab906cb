// motcua web chat: plain ES2020, no framework, no build step.
// Every piece of message text goes into the page through textContent or text nodes, never innerHTML:
// answers quote citizens and official documents, and must show HTML or Markdown as written.
"use strict";

(() => {
  const POLL_MS = 4000; // officials' replies arrive later; the brief's polling period
  const PAGE_LIMIT = 200; // the server returns at most this many messages per request (bot/web.py)
  const SESSION_KEY = "motcua.session";
  const SENT_KEY = "motcua.sent"; // the citizen's own messages: the server only lists what it sent
  const SENT_KEEP = 100;
  const TIME = new Intl.DateTimeFormat("vi-VN", { hour: "2-digit", minute: "2-digit", timeZone: "Asia/Ho_Chi_Minh" });
  // https only; stop before spaces, quotes and brackets; trailing punctuation is trimmed below.
  const URL_RE = /https:\/\/[^\s<>"'`()[\]{}]+/g;
  const TRAILING = /[.,;:!?…]+$/;

  const els = {
    conversation: document.getElementById("conversation"),
    messages: document.getElementById("messages"),
    typing: document.getElementById("typing"),
    form: document.getElementById("composer"),
    input: document.getElementById("question"),
    send: document.getElementById("send"),
  };

  const shown = new Set(); // ids of server messages already on the page
  let cursor = 0; // highest id received through the message list (poll), used as ?after=
  let busy = false;
  let ready = false; // history loaded (and greeting requested) at least once
  let pollTimer = null;
  let polling = false; // one poll at a time, whoever triggers it
  let pollFailed = false;

  // -- storage (localStorage may be unavailable: private mode, blocked cookies) ---------------------

  const memory = new Map();
  const store = {
    get(key) {
      try { return window.localStorage.getItem(key); } catch { return memory.get(key) ?? null; }
    },
    set(key, value) {
      try { window.localStorage.setItem(key, value); } catch { memory.set(key, value); }
    },
  };

  function newSessionId() {
    const bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes); // works on plain http too, unlike crypto.randomUUID
    return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function sessionId() {
    let sid = store.get(SESSION_KEY);
    if (!sid || !/^[A-Za-z0-9_.:-]{1,120}$/.test(sid)) {
      sid = newSessionId();
      store.set(SESSION_KEY, sid);
      store.set(SENT_KEY, "[]");
    }
    return sid;
  }

  const session = sessionId();

  function sentLog() {
    try {
      const items = JSON.parse(store.get(SENT_KEY) || "[]");
      return Array.isArray(items) ? items : [];
    } catch {
      return [];
    }
  }

  function remember(text, after) {
    // Only what reached the server; `after` places it among the server's messages on reload.
    const items = sentLog();
    items.push({ after, text, at: new Date().toISOString() });
    store.set(SENT_KEY, JSON.stringify(items.slice(-SENT_KEEP)));
  }

  function lastShownId() {
    let max = 0;
    for (const id of shown) max = Math.max(max, Number(id) || 0);
    return max;
  }

  // -- rendering -------------------------------------------------------------------------------------

  function appendText(parent, text) {
    // Text nodes and <a> elements only; a link's href is the matched https URL, nothing else.
    let last = 0;
    for (const match of text.matchAll(URL_RE)) {
      const url = match[0].replace(TRAILING, "");
      const start = match.index;
      let safe = null;
      try {
        const parsed = new URL(url);
        if (parsed.protocol === "https:") safe = parsed.href;
      } catch {
        safe = null;
      }
      if (!safe) continue;
      if (start > last) parent.append(document.createTextNode(text.slice(last, start)));
      const a = document.createElement("a");
      a.href = safe;
      a.target = "_blank";
      a.rel = "noopener noreferrer nofollow";
      a.textContent = url;
      parent.append(a);
      last = start + url.length;
    }
    if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
  }

  function formatTime(iso) {
    const date = iso ? new Date(iso) : new Date();
    return Number.isNaN(date.getTime()) ? "" : TIME.format(date);
  }

  function nearBottom() {
    const c = els.conversation;
    return c.scrollHeight - c.scrollTop - c.clientHeight < 120;
  }

  function scrollDown(force) {
    if (force || nearBottom()) els.conversation.scrollTop = els.conversation.scrollHeight;
  }

  function addMessage({ id = null, text, author, at = null, buttons = [] }) {
    const stick = nearBottom();
    const item = document.createElement("div");
    item.className = `msg msg--${author}`;
    if (id !== null) item.dataset.id = id;

    if (author === "official") {
      const badge = document.createElement("div");
      badge.className = "badge";
      badge.textContent = "Cán bộ trả lời";
      item.append(badge);
    }
    const bubble = document.createElement("div");
    bubble.className = "bubble";
    if (author === "system") bubble.setAttribute("role", "alert");
    appendText(bubble, String(text ?? ""));
    item.append(bubble);

    if (author !== "system") {
      const time = document.createElement("time");
      time.className = "time";
      if (at) time.dateTime = at;
      time.textContent = formatTime(at);
      item.append(time);
    }

    if (Array.isArray(buttons) && buttons.length > 0) {
      const chips = document.createElement("div");
      chips.className = "chips";
      chips.setAttribute("role", "group");
      chips.setAttribute("aria-label", "Lựa chọn trả lời");
      for (const b of buttons) {
        if (!b || typeof b.payload !== "string") continue;
        const chip = document.createElement("button");
        chip.type = "button";
        chip.className = "chip";
        chip.textContent = String(b.label ?? b.payload);
        chip.dataset.payload = b.payload;
        chip.addEventListener("click", () => press(b.payload, chip.textContent));
        chips.append(chip);
      }
      item.append(chips);
    }

    els.messages.append(item);
    scrollDown(stick || author === "citizen");
    return item;
  }

  function addServerMessage(m) {
    const id = String(m.id);
    if (shown.has(id)) return;
    shown.add(id);
    addMessage({ id, text: m.text, author: m.author || "bot", at: m.at || null, buttons: m.buttons || [] });
  }

  function systemMessage(text) {
    addMessage({ text, author: "system" });
  }

  function setTyping(on) {
    els.typing.hidden = !on;
    els.conversation.setAttribute("aria-busy", on ? "true" : "false");
    if (on) scrollDown(true);
  }

  function setBusy(on) {
    busy = on;
    els.send.disabled = on;
    els.form.classList.toggle("is-busy", on);
  }

  // -- HTTP ------------------------------------------------------------------------------------------

  class HttpError extends Error {}

  async function api(path, options = {}) {
    let response;
    try {
      response = await fetch(path, {
        ...options,
        headers: { Accept: "application/json", ...(options.body ? { "Content-Type": "application/json" } : {}) },
        cache: "no-store",
      });
    } catch {
      throw new HttpError("Không kết nối được máy chủ. Bạn kiểm tra mạng rồi thử lại nhé.");
    }
    let data = null;
    try { data = await response.json(); } catch { data = null; }
    if (!response.ok) {
      const detail = data && typeof data.detail === "string" ? data.detail : response.statusText;
      const what = response.status >= 500 ? "Máy chủ đang gặp sự cố" : "Yêu cầu không hợp lệ";
      throw new HttpError(`${what} (${response.status}): ${detail}`);
    }
    return data;
  }

  async function post(body) {
    setBusy(true);
    setTyping(true);
    try {
      const data = await api("/api/chat", { method: "POST", body: JSON.stringify({ session, ...body }) });
      for (const reply of data.replies || []) addServerMessage(reply);
      return true;
    } catch (err) {
      systemMessage(err instanceof HttpError ? err.message : "Đã có lỗi không mong muốn. Bạn thử lại nhé.");
      return false;
    } finally {
      setTyping(false);
      setBusy(false);
    }
  }

  async function sendText(text) {
    const clean = text.trim();
    if (!clean || busy) return false;
    const greeting = clean === "/start";
    const after = lastShownId();
    const item = greeting ? null : addMessage({ text: clean, author: "citizen" });
    const ok = await post({ text: clean });
    if (item) settle(item, ok, clean, after);
    return ok;
  }

  async function press(payload, label) {
    if (busy) return;
    const after = lastShownId();
    const item = addMessage({ text: label, author: "citizen" });
    settle(item, await post({ button: payload }), label, after);
  }

  function settle(item, ok, text, after) {
    if (ok) {
      remember(text, after);
    } else {
      item.classList.add("msg--failed");
      item.querySelector(".time").textContent = "Chưa gửi được";
    }
  }

  async function fetchAfter(after) {
    // Everything the server sent after an id, paged; the cursor moves only once all pages arrived.
    const all = [];
    let next = after;
    for (;;) {
      const query = next > 0 ? `?after=${next}` : "";
      const data = await api(`/api/chat/${encodeURIComponent(session)}/messages${query}`);
      const batch = data.messages || [];
      all.push(...batch);
      for (const m of batch) next = Math.max(next, Number(m.id) || 0);
      if (batch.length < PAGE_LIMIT) return { messages: all, cursor: next };
    }
  }

  async function fetchNew() {
    const { messages, cursor: next } = await fetchAfter(cursor);
    for (const m of messages) addServerMessage(m); // ids already on the page are skipped, not repeated
    cursor = next;
  }

  async function loadHistory() {
    // Interleave the citizen's remembered messages with the server's list by the id seen before each.
    const { messages, cursor: next } = await fetchAfter(0);
    const mine = sentLog();
    let i = 0;
    for (const m of messages) {
      while (i < mine.length && Number(mine[i].after) < Number(m.id)) {
        addMessage({ text: mine[i].text, author: "citizen", at: mine[i].at });
        i += 1;
      }
      addServerMessage(m);
    }
    for (; i < mine.length; i += 1) addMessage({ text: mine[i].text, author: "citizen", at: mine[i].at });
    cursor = next;
    return messages.length;
  }

  async function start() {
    const count = await loadHistory();
    ready = true;
    if (count === 0) await sendText("/start"); // a new session: ask for the bot's greeting once
  }

  async function poll() {
    if (polling) return;
    polling = true;
    if (pollTimer !== null) window.clearTimeout(pollTimer);
    pollTimer = null;
    if (!document.hidden) {
      try {
        if (ready) await fetchNew(); else await start();
        if (pollFailed) systemMessage("Đã kết nối lại.");
        pollFailed = false;
      } catch (err) {
        // One notice per outage, not one every few seconds.
        if (!pollFailed) systemMessage(err instanceof HttpError ? err.message : "Mất kết nối, đang thử lại…");
        pollFailed = true;
      }
    }
    polling = false;
    pollTimer = window.setTimeout(poll, POLL_MS);
  }

  // -- composer --------------------------------------------------------------------------------------

  function autosize() {
    els.input.style.height = "auto";
    els.input.style.height = `${Math.min(els.input.scrollHeight, 140)}px`;
  }

  els.form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = els.input.value;
    if (!text.trim() || busy) return;
    els.input.value = "";
    autosize();
    const ok = await sendText(text);
    if (!ok && !els.input.value) els.input.value = text; // let the citizen resend what failed
    els.input.focus();
  });

  els.input.addEventListener("keydown", (event) => {
    // Vietnamese is typed through input methods (Telex, VNI): Enter during composition is not "send".
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      els.form.requestSubmit();
    }
  });
  els.input.addEventListener("input", autosize);

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) poll(); // catch up at once when the citizen comes back to the tab
  });

  poll();
  if (window.matchMedia("(pointer: fine)").matches) els.input.focus(); // no surprise keyboard on phones
})();
