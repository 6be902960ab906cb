// motcua web chat: plain ES2020, no framework, no build step.
// Every piece of message text goes into the page through textContent or text nodes, never innerHTML:
// answers quote citizens and official documents, and must show HTML or Markdown as written. A card's
// structure (headings, lists, links: the reply's "blocks") is built with createElement, its text the same way.
"use strict";

(() => {
  const POLL_MS = 4000; // officials' replies arrive later; the brief's polling period
  const PAGE_LIMIT = 200; // the server returns at most this many messages per request (bot/web.py)
  const SESSION_KEY = "motcua.session";
  const SENT_KEY = "motcua.sent"; // the citizen's own messages: the server only lists what it sent
  const SENT_KEEP = 100;
  const LANG_KEY = "motcua.lang";
  const TIME = new Intl.DateTimeFormat("vi-VN", { hour: "2-digit", minute: "2-digit", timeZone: "Asia/Ho_Chi_Minh" });
  // https only; stop before spaces, quotes and brackets; trailing punctuation is trimmed below.
  const URL_RE = /https:\/\/[^\s<>"'`()[\]{}]+/g;
  const TRAILING = /[.,;:!?…]+$/;
  const LETTER = /\p{L}/u;
  const LEADING_EMOJI = /^(?:[\p{Extended_Pictographic}\p{Emoji_Modifier}\u200d\ufe0f\u20e3]+\s*)+/u;

  // The page around the conversation, in the citizen's language: Vietnamese unless the browser is English,
  // then whatever language the bot speaks to them (the server says so with each answer).
  const FRAME = {
    vi: {
      title: "Một cửa — Hỏi đáp thủ tục hành chính",
      subtitle: "Trợ lý trực tuyến · Cán bộ trả lời các câu hỏi khó trong giờ hành chính",
      log: "Cuộc trò chuyện",
      typing: "Trợ lý đang trả lời…",
      question: "Câu hỏi của bạn",
      placeholder: "Nhập câu hỏi về thủ tục…",
      send: "Gửi câu hỏi",
      sendShort: "Gửi",
      hint: "Enter để gửi · Shift+Enter để xuống dòng · Không gửi số CCCD, số điện thoại trong câu hỏi.",
      badge: "Cán bộ trả lời",
      choices: "Lựa chọn trả lời",
      offline: "Không kết nối được máy chủ. Bạn kiểm tra mạng rồi thử lại nhé.",
      serverError: "Máy chủ đang gặp sự cố",
      badRequest: "Yêu cầu không hợp lệ",
      unexpected: "Đã có lỗi không mong muốn. Bạn thử lại nhé.",
      reconnected: "Đã kết nối lại.",
      lost: "Mất kết nối, đang thử lại…",
      notSent: "Chưa gửi được",
      "f:+": "Hữu ích",
      "f:-": "Chưa hữu ích",
      h: "Gặp cán bộ",
    },
    en: {
      title: "Một cửa — Administrative procedures help desk",
      subtitle: "Online assistant · Officials answer the hard questions in office hours",
      log: "Conversation",
      typing: "The assistant is answering…",
      question: "Your question",
      placeholder: "Ask about a procedure…",
      send: "Send question",
      sendShort: "Send",
      hint: "Enter to send · Shift+Enter for a new line · Do not put ID card or phone numbers in your question.",
      badge: "Official's reply",
      choices: "Reply options",
      offline: "Cannot reach the server. Please check your connection and try again.",
      serverError: "The server has a problem",
      badRequest: "The request was refused",
      unexpected: "Something unexpected went wrong. Please try again.",
      reconnected: "Connected again.",
      lost: "Connection lost, trying again…",
      notSent: "Not sent",
      "f:+": "Helpful",
      "f:-": "Not helpful",
      h: "Talk to an official",
    },
  };

  const els = {
    root: document.documentElement,
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

  function browserLang() {
    const first = (navigator.languages && navigator.languages[0]) || navigator.language || "";
    return /^en\b/i.test(first) ? "en" : "vi";
  }

  let lang = FRAME[store.get(LANG_KEY)] ? store.get(LANG_KEY) : browserLang();

  function t(key) {
    return FRAME[lang][key] ?? FRAME.vi[key] ?? key;
  }

  function setLang(next) {
    // Only the two languages the frame is written in; the server says "vi" or "en".
    if (!FRAME[next]) return;
    lang = next;
    store.set(LANG_KEY, next);
    els.root.lang = next;
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    for (const el of document.querySelectorAll("[data-i18n-placeholder]")) {
      el.placeholder = t(el.dataset.i18nPlaceholder);
    }
    for (const el of document.querySelectorAll("[data-i18n-aria-label]")) {
      el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
    }
    for (const el of document.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  }

  setLang(lang);

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

  // -- blocks: a card's structure -----------------------------------------------------------------------

  const str = (value) => (typeof value === "string" ? value : "");

  function labelled(tag, className, label) {
    const el = document.createElement(tag);
    el.className = className;
    if (label) {
      const span = document.createElement("span");
      span.className = "label";
      span.textContent = `${label}:`;
      el.append(span, document.createTextNode(" "));
    }
    return el;
  }

  function renderBlock(block) {
    // One block as elements; null for anything this page does not know (the plain text is shown instead).
    if (!block || typeof block !== "object") return null;
    switch (block.type) {
      case "heading": {
        const h = document.createElement("h2");
        h.className = "card-title";
        appendText(h, botText(str(block.text)));
        return h;
      }
      case "paragraph":
      case "note": {
        const p = document.createElement("p");
        p.className = block.type === "note" ? "card-note" : "card-text";
        appendText(p, block.type === "note" ? botText(str(block.text)) : str(block.text));
        return p;
      }
      case "field":
      case "link": {
        const p = labelled("p", "card-field", str(block.label));
        appendText(p, str(block.type === "link" ? block.url : block.text)); // an https link only, as in text
        return p;
      }
      case "list": {
        if (!Array.isArray(block.items)) return null;
        const section = document.createElement("div");
        section.className = "card-list";
        if (str(block.label)) section.append(labelled("p", "card-field", str(block.label)));
        const ul = document.createElement("ul");
        for (const item of block.items) {
          const li = document.createElement("li");
          appendText(li, str(item));
          ul.append(li);
        }
        if (block.items.length) section.append(ul);
        if (str(block.more)) {
          const more = document.createElement("p");
          more.className = "card-more";
          more.textContent = str(block.more);
          section.append(more);
        }
        return section;
      }
      default:
        return null;
    }
  }

  function renderBlocks(bubble, blocks) {
    // All or nothing: a reply with one unknown block is shown as its plain text.
    if (!Array.isArray(blocks) || blocks.length === 0) return false;
    const nodes = blocks.map(renderBlock);
    if (nodes.some((node) => node === null)) return false;
    bubble.classList.add("bubble--card");
    bubble.append(...nodes);
    return true;
  }

  function nearBottom() {
    const c = els.conversation;
    return c.scrollHeight - c.scrollTop - c.clientHeight < 120;
  }

  function scrollDown(force) {
    if (force || nearBottom()) els.conversation.scrollTop = els.conversation.scrollHeight;
  }

  function reveal(item) {
    // The newest reply in view: all of it, or from its top when it is taller than the conversation pane.
    if (!item) return;
    const pane = els.conversation;
    const top = item.getBoundingClientRect().top - pane.getBoundingClientRect().top + pane.scrollTop;
    const room = pane.clientHeight;
    const target = item.offsetHeight + 16 > room ? top - 8 : top + item.offsetHeight - room + 8;
    pane.scrollTo({ top: Math.max(0, target) });
  }

  // Whether this device draws colour emoji: without a font for them each one is an empty box, so the bot's
  // leading emoji (📄 on a card, 👍 on a button) are left out and the words beside them stand alone.
  const EMOJI = (() => {
    try {
      const canvas = document.createElement("canvas");
      canvas.width = canvas.height = 24;
      const ctx = canvas.getContext("2d", { willReadFrequently: true });
      if (!ctx) return true;
      ctx.font = "20px sans-serif";
      ctx.textBaseline = "top";
      ctx.fillStyle = "#000";
      ctx.fillText("👍", 0, 0);
      const px = ctx.getImageData(0, 0, 24, 24).data;
      for (let i = 0; i < px.length; i += 4) {
        if (px[i + 3] > 0 && Math.max(px[i], px[i + 1], px[i + 2]) - Math.min(px[i], px[i + 1], px[i + 2]) > 40) {
          return true; // a coloured pixel: an emoji font drew it
        }
      }
      return false;
    } catch {
      return true;
    }
  })();
  els.root.classList.toggle("no-emoji", !EMOJI);

  function botText(text) {
    return EMOJI ? text : text.replace(LEADING_EMOJI, "");
  }

  function chipText(label, payload) {
    // Words beside every emoji: a phone that cannot draw one still says what the button does.
    const words = LETTER.test(label) ? "" : FRAME[lang][payload] || "";
    const shown = botText(words ? `${label} ${words}` : label).trim();
    return shown || label;
  }

  function addMessage({ id = null, text, author, at = null, buttons = [], blocks = null }) {
    const stick = nearBottom();
    const item = document.createElement("div");
    item.className = `msg msg--${author}`;
    if (id !== null) item.dataset.id = id;

    if (author === "official") {
      const badge = document.createElement("div");
      badge.className = "badge";
      badge.dataset.i18n = "badge";
      badge.textContent = t("badge");
      item.append(badge);
    }
    const bubble = document.createElement("div");
    bubble.className = "bubble";
    if (author === "system") bubble.setAttribute("role", "alert");
    if (renderBlocks(bubble, blocks)) item.classList.add("msg--card");
    else appendText(bubble, String(text ?? ""));
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
      chips.dataset.i18nAriaLabel = "choices";
      chips.setAttribute("aria-label", t("choices"));
      for (const b of buttons) {
        if (!b || typeof b.payload !== "string") continue;
        const chip = document.createElement("button");
        chip.type = "button";
        chip.className = "chip";
        chip.textContent = chipText(String(b.label ?? b.payload), b.payload);
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
    if (shown.has(id)) return null;
    shown.add(id);
    const { text, at = null, buttons = [], blocks = null } = m;
    return addMessage({ id, text, author: m.author || "bot", at, buttons: buttons || [], blocks });
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
      throw new HttpError(t("offline"));
    }
    let data = null;
    try { data = await response.json(); } catch { data = null; }
    if (!response.ok) {
      const detail = data && typeof data.detail === "string" ? data.detail : response.statusText;
      const what = response.status >= 500 ? t("serverError") : t("badRequest");
      throw new HttpError(`${what} (${response.status}): ${detail}`);
    }
    return data;
  }

  async function post(body) {
    setBusy(true);
    setTyping(true);
    try {
      const data = await api("/api/chat", { method: "POST", body: JSON.stringify({ session, lang, ...body }) });
      setTyping(false);
      if (data.lang) setLang(data.lang);
      let last = null;
      for (const reply of data.replies || []) last = addServerMessage(reply) || last;
      reveal(last);
      return true;
    } catch (err) {
      systemMessage(err instanceof HttpError ? err.message : t("unexpected"));
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
      item.querySelector(".time").textContent = t("notSent");
    }
  }

  async function fetchAfter(after) {
    // Everything the server sent after an id, paged; the cursor moves only once all pages arrived.
    const all = [];
    let next = after;
    for (;;) {
      const query = next > 0 ? `?after=${next}` : "";
      const data = await api(`/api/chat/${encodeURIComponent(session)}/messages${query}`);
      if (data.lang) setLang(data.lang);
      const batch = data.messages || [];
      all.push(...batch);
      for (const m of batch) next = Math.max(next, Number(m.id) || 0);
      if (batch.length < PAGE_LIMIT) return { messages: all, cursor: next };
    }
  }

  async function fetchNew() {
    const { messages, cursor: next } = await fetchAfter(cursor);
    let last = null;
    for (const m of messages) last = addServerMessage(m) || last; // ids already on the page are skipped
    reveal(last); // an official's reply that came later is the newest message: show it
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
        if (pollFailed) systemMessage(t("reconnected"));
        pollFailed = false;
      } catch (err) {
        // One notice per outage, not one every few seconds.
        if (!pollFailed) systemMessage(err instanceof HttpError ? err.message : t("lost"));
        pollFailed = true;
      }
    }
    polling = false;
    pollTimer = window.setTimeout(poll, POLL_MS);
  }

  // -- composer --------------------------------------------------------------------------------------

  function autosize() {
    // Chromium counts a wrapped placeholder in scrollHeight: an empty box keeps its one-line height.
    if (!els.input.value) {
      els.input.style.height = "";
      return;
    }
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
