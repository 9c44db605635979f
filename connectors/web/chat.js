// The chat page of `chatbot run`: Rasa's socket.io protocol, no framework.
//
// Everything the bot or the user wrote is put on the page with textContent or as DOM nodes built
// here, never as HTML. A tiny markdown subset is rendered that way: **bold**, *italic* or
// _italic_, [links](https://...) and bare http(s) URLs, and line breaks.
//
// The conversation survives reloads: localStorage keeps only the signed session key the server
// confirmed; after `session_confirm` the page asks the server for the conversation's messages
// (`session_history`), so what it shows is what the conversation store holds.
(() => {
  "use strict";

  const STORAGE_KEY = "chatbot.session";
  const config = document.body.dataset;
  const $ = (id) => document.getElementById(id);
  const log = $("messages");
  const statusLine = $("chat-status");
  const typing = $("typing");
  const form = $("composer");
  const input = $("message-input");
  const newChat = $("new-chat");

  const storage = {
    get() {
      try { return window.localStorage.getItem(STORAGE_KEY); } catch (e) { return null; }
    },
    set(value) {
      try {
        if (value) window.localStorage.setItem(STORAGE_KEY, value);
        else window.localStorage.removeItem(STORAGE_KEY);
      } catch (e) { /* private mode: the session lasts as long as the page */ }
    },
  };

  function setStatus(text, state) {
    statusLine.textContent = text;
    statusLine.dataset.state = state || "";
  }

  if (config.enabled === "false" || typeof window.io !== "function") {
    setStatus("Chat is not available on this server.", "error");
    input.disabled = true;
    form.querySelector("button").disabled = true;
    newChat.disabled = true;
    return;
  }

  // ---- safe markdown -------------------------------------------------------------------------

  const INLINE = new RegExp(
    [
      String.raw`\*\*(?<bold>[^*\n]+?)\*\*`,
      String.raw`(?<![\w*])\*(?<italic>[^*\s](?:[^*\n]*?[^*\s])?)\*(?![\w*])`,
      String.raw`(?<![\w_])_(?<italic2>[^_\s](?:[^_\n]*?[^_\s])?)_(?![\w_])`,
      String.raw`\[(?<label>[^\]\n]+)\]\((?<href>[^)\s]+)\)`,
      String.raw`(?<url>https?:\/\/[^\s<>"]*[^\s<>".,;:!?)\]'])`,
      String.raw`(?<br>\n)`,
    ].join("|"),
    "g",
  );

  function safeUrl(text) {
    try {
      const url = new URL(text, window.location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function link(href, label) {
    const a = document.createElement("a");
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer nofollow";
    a.textContent = label;
    return a;
  }

  function appendMarkdown(parent, text, depth = 0) {
    let last = 0;
    for (const match of text.matchAll(INLINE)) {
      if (match.index > last) parent.append(text.slice(last, match.index));
      last = match.index + match[0].length;
      const g = match.groups;
      if (g.br !== undefined) {
        parent.append(document.createElement("br"));
      } else if (g.url !== undefined) {
        const href = safeUrl(g.url);
        parent.append(href ? link(href, g.url) : g.url);
      } else if (g.label !== undefined) {
        const href = /^https?:\/\//i.test(g.href) ? safeUrl(g.href) : null;
        parent.append(href ? link(href, g.label) : match[0]);
      } else if (depth > 2) {
        parent.append(match[0]);
      } else {
        const node = document.createElement(g.bold !== undefined ? "strong" : "em");
        appendMarkdown(node, g.bold ?? g.italic ?? g.italic2, depth + 1);
        parent.append(node);
      }
    }
    if (last < text.length) parent.append(text.slice(last));
  }

  // ---- the message log -----------------------------------------------------------------------

  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");
  let rebuilding = false; // no smooth scrolling while the history is put back

  function scrollToEnd() {
    const smooth = !rebuilding && !reducedMotion.matches;
    log.scrollTo({ top: log.scrollHeight, behavior: smooth ? "smooth" : "instant" });
  }

  function clearLog() {
    log.replaceChildren();
    const note = document.createElement("p");
    note.className = "empty";
    note.id = "empty-note";
    note.textContent = "Say hello to start the conversation.";
    log.append(note);
  }

  function row(sender) {
    $("empty-note")?.remove();
    const div = document.createElement("div");
    div.className = `message ${sender}`;
    const who = document.createElement("span");
    who.className = "visually-hidden";
    who.textContent = sender === "user" ? "You said: " : "Assistant: ";
    div.append(who);
    log.append(div);
    return div;
  }

  // Buttons answer the latest question only: the user's next message disables them (and marks
  // the one that was chosen, also when the page rebuilds the conversation from its history).
  function disableOldButtons(answer) {
    for (const button of log.querySelectorAll(".quick-replies button:not([disabled])")) {
      if (button.textContent === answer) button.classList.add("chosen");
      button.disabled = true;
    }
  }

  function addUserMessage(text) {
    const div = row("user");
    const bubble = document.createElement("p");
    bubble.className = "bubble";
    bubble.textContent = text;
    div.append(bubble);
    scrollToEnd();
  }

  function addImage(div, src, alt) {
    const href = safeUrl(src);
    if (!href) return;
    const img = document.createElement("img");
    img.src = href;
    img.alt = alt || "Image from the assistant";
    img.loading = "lazy";
    img.decoding = "async";
    img.addEventListener("load", scrollToEnd);
    div.append(img);
  }

  function addQuickReplies(div, replies) {
    const group = document.createElement("div");
    group.className = "quick-replies";
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", "Suggested answers");
    for (const reply of replies) {
      if (!reply || typeof reply.title !== "string") continue;
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = reply.title;
      button.addEventListener("click", () => send(reply.payload || reply.title, reply.title));
      group.append(button);
    }
    div.append(group);
  }

  function addElements(div, elements) {
    for (const element of elements) {
      if (!element || typeof element !== "object") continue;
      const card = document.createElement("div");
      card.className = "card";
      if (element.image_url) addImage(card, element.image_url, element.title);
      if (element.title) {
        const title = document.createElement("strong");
        title.textContent = String(element.title);
        card.append(title);
      }
      if (element.subtitle) {
        const subtitle = document.createElement("p");
        subtitle.textContent = String(element.subtitle);
        card.append(subtitle);
      }
      const buttons = Array.isArray(element.buttons) ? element.buttons : [];
      const postbacks = buttons.filter((b) => b && b.type !== "web_url");
      for (const b of buttons.filter((x) => x && x.type === "web_url" && safeUrl(x.url))) {
        card.append(link(safeUrl(b.url), String(b.title || b.url)));
      }
      if (postbacks.length) addQuickReplies(card, postbacks);
      div.append(card);
    }
  }

  function addBotMessage(message) {
    if (!message || typeof message !== "object") return;
    const attachment = message.attachment;
    const shown =
      typeof message.text === "string" || Array.isArray(message.quick_replies) || attachment;
    if (!shown) {
      // A custom payload: for the embedding page to handle, not shown.
      document.dispatchEvent(new CustomEvent("chatbot:custom", { detail: message }));
      return;
    }
    const div = row("bot");
    if (typeof message.text === "string" && message.text) {
      const bubble = document.createElement("p");
      bubble.className = "bubble";
      appendMarkdown(bubble, message.text);
      div.append(bubble);
    }
    if (attachment && typeof attachment === "object") {
      const payload = attachment.payload || {};
      if (attachment.type === "image") addImage(div, payload.src, payload.title);
      else if (attachment.type === "template" && Array.isArray(payload.elements)) {
        addElements(div, payload.elements);
      }
    }
    if (Array.isArray(message.quick_replies) && message.quick_replies.length) {
      addQuickReplies(div, message.quick_replies);
    }
    scrollToEnd();
  }

  function showHistory(history) {
    clearLog();
    if (!Array.isArray(history)) return;
    rebuilding = true;
    for (const item of history) {
      if (item && item.sender === "user" && typeof item.text === "string") {
        disableOldButtons(item.text);
        addUserMessage(item.text);
      } else if (item && item.sender === "bot") {
        addBotMessage(item);
      }
    }
    scrollToEnd();
    rebuilding = false;
  }

  // ---- the connection ------------------------------------------------------------------------

  const namespace = config.namespace && config.namespace !== "/" ? config.namespace : undefined;
  const options = { path: config.socketioPath || "/socket.io" };
  // Several server processes (`chatbot run --workers`): a websocket stays with one of them.
  if (config.transports) options.transports = config.transports.split(",");
  const socket = window.io(namespace, options);
  const userEvent = config.userEvent || "user_uttered";
  const botEvent = config.botEvent || "bot_uttered";
  let sessionKey = storage.get();
  let ready = false;
  let waiting = 0;
  const outbox = [];

  function setTyping(on) {
    typing.hidden = !on;
    if (on) scrollToEnd();
  }

  function emitMessage(payload) {
    waiting += 1;
    setTyping(true);
    socket.timeout(60000).emit(
      userEvent,
      { message: payload, session_id: sessionKey },
      (error, answer) => {
        waiting = Math.max(0, waiting - 1);
        if (!waiting) setTyping(false);
        if (error || !answer || answer.ok === false) {
          setStatus("The assistant could not answer. Please try again.", "error");
        }
      },
    );
  }

  function send(payload, shownText) {
    disableOldButtons(shownText);
    addUserMessage(shownText);
    if (ready) emitMessage(payload);
    else outbox.push({ payload, shownText });
    input.focus();
  }

  socket.on("connect", () => {
    setStatus("Connecting…", "");
    socket.emit("session_request", { session_id: sessionKey });
  });

  socket.on("session_confirm", (confirmed) => {
    const key = confirmed && typeof confirmed === "object" ? confirmed.session_id : confirmed;
    if (key !== sessionKey) {
      sessionKey = key;
      storage.set(key);
    }
    socket.emit("session_history", {}, (history) => {
      showHistory(history);
      ready = true;
      setStatus("Online", "online");
      for (const queued of outbox.splice(0)) {
        addUserMessage(queued.shownText);
        emitMessage(queued.payload);
      }
    });
  });

  socket.on(botEvent, (message) => {
    addBotMessage(message);
  });

  socket.on("disconnect", () => {
    ready = false;
    setStatus("Offline, reconnecting…", "offline");
  });

  socket.on("connect_error", () => {
    setStatus("Cannot reach the server, retrying…", "offline");
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    send(text, text);
  });

  newChat.addEventListener("click", () => {
    sessionKey = null;
    storage.set(null);
    clearLog();
    ready = false;
    socket.emit("session_request", { session_id: null });
    input.focus();
  });
})();
