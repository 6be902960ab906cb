/* motcua dashboard: progressive enhancements only — every page works without this file.
 *
 * - the inbox and an open ticket refresh themselves every few seconds when something changed (server-rendered,
 *   escaped fragments swapped in; forms being typed in are never replaced);
 * - an open ticket tells the server who is looking and shows who else is ("being viewed by …");
 * - reply templates and the procedure card are inserted into the reply at the cursor;
 * - a form's submit button is disabled once pressed (the server's one-time key is what really makes a double
 *   press harmless).
 */
"use strict";

(function () {
  const POLL_MS = 3000;
  const BADGE_EVERY = 1; // the unread count too: a new ticket's notification shows within one poll
  const csrf = document.body.dataset.csrf || "";

  function visible() {
    return document.visibilityState !== "hidden";
  }

  async function fetchText(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (response.redirected || !response.ok) throw new Error("refresh refused: " + response.status);
    return response.text();
  }

  function stampOf(html) {
    const holder = document.createElement("template");
    holder.innerHTML = html;
    const marked = holder.content.querySelector("[data-stamp]");
    return { holder: holder, stamp: marked ? marked.dataset.stamp : "" };
  }

  // -- the inbox ------------------------------------------------------------------------------------------
  const inbox = document.getElementById("inbox-live");

  async function refreshInbox() {
    const { holder, stamp } = stampOf(await fetchText(inbox.dataset.live));
    if (stamp && stamp !== inbox.dataset.stamp) {
      inbox.replaceChildren(holder.content);
      inbox.dataset.stamp = stamp;
    }
  }

  // -- one ticket -----------------------------------------------------------------------------------------
  const ticket = document.getElementById("ticket-live");

  async function beat() {
    const response = await fetch(ticket.dataset.presence, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
    });
    if (!response.ok) throw new Error("presence refused: " + response.status);
    const state = await response.json();
    const notice = document.getElementById("viewers");
    if (notice) {
      document.getElementById("viewer-names").textContent = state.viewers.join(", ");
      notice.hidden = state.viewers.length === 0;
    }
    if (state.stamp !== ticket.dataset.stamp) {
      const { holder, stamp } = stampOf(await fetchText(ticket.dataset.live));
      ticket.replaceChildren(holder.content);
      ticket.dataset.stamp = stamp || state.stamp;
    }
  }

  function insertAtCursor(text) {
    const box = document.getElementById("reply-text");
    if (!box || !text) return;
    const start = box.selectionStart ?? box.value.length;
    const end = box.selectionEnd ?? box.value.length;
    const before = box.value.slice(0, start);
    const glue = before && !before.endsWith("\n") ? "\n" : "";
    box.value = before + glue + text + box.value.slice(end);
    const caret = (before + glue + text).length;
    box.focus();
    box.setSelectionRange(caret, caret);
  }

  const templateButton = document.getElementById("insert-template");
  if (templateButton) {
    templateButton.addEventListener("click", function (event) {
      event.preventDefault();
      const choice = document.getElementById("template-choice");
      const option = choice.options[choice.selectedIndex];
      if (option && option.dataset.body) insertAtCursor(option.dataset.body);
    });
  }
  const cardLink = document.getElementById("insert-card");
  if (cardLink) {
    cardLink.addEventListener("click", function (event) {
      event.preventDefault();
      const card = document.getElementById("card-text");
      if (card) insertAtCursor(card.content.textContent);
    });
  }

  // -- forms ----------------------------------------------------------------------------------------------
  document.querySelectorAll("form[method='post']").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.sent) {
        event.preventDefault(); // pressed twice: the first press is on its way
        return;
      }
      form.dataset.sent = "1";
      form.querySelectorAll("button[data-once]").forEach(function (button) {
        button.setAttribute("aria-disabled", "true");
      });
    });
  });

  // -- the unread badge -----------------------------------------------------------------------------------
  async function refreshBadge() {
    const link = document.querySelector("a[href='/dashboard/notifications']");
    if (!link) return;
    const response = await fetch("/dashboard/notifications/unread", { credentials: "same-origin" });
    if (!response.ok) return;
    const count = (await response.json()).unread;
    let badge = document.getElementById("unread");
    if (!count) {
      if (badge) badge.remove();
      return;
    }
    if (!badge) {
      badge = document.createElement("span");
      badge.id = "unread";
      badge.className = "badge";
      link.append(" ", badge);
    }
    badge.textContent = String(count);
    badge.setAttribute("aria-label", count + " chưa đọc · unread");
  }

  // -- the loop -------------------------------------------------------------------------------------------
  let ticks = 0;
  async function tick() {
    ticks += 1;
    if (visible()) {
      try {
        if (inbox) await refreshInbox();
        if (ticket) await beat();
        if (ticks % BADGE_EVERY === 0) await refreshBadge();
      } catch (error) {
        // a lost connection or an expired session: keep the page as it is and try again later
        console.warn(error);
      }
    }
    window.setTimeout(tick, POLL_MS);
  }
  if (inbox || ticket || document.querySelector("a[href='/dashboard/notifications']")) {
    window.setTimeout(tick, inbox || ticket ? 0 : POLL_MS);
  }
})();
