/*
 * The review screen: claim a case, show it, take a verdict by key or click, move on.
 *
 * Leases: the countdown is the server's time left (`seconds_left`, counted on the
 * monotonic clock from when the answer arrived), never the lease's length. While the
 * case is on screen and the reviewer is active, a heartbeat renews the lease (bounded by
 * the server); idle, it stops and the lease may run out, but the case stays on screen and
 * a verdict is still accepted while nobody else holds it. When a lease is short or gone
 * the verdict is sent and its answer awaited before the screen moves on; a verdict that
 * is refused is kept in the "not saved" list with Retry, never dropped.
 *
 * State that belongs to a case (its comment, its zoom, the skip dialog's case) lives on
 * the case's task object and goes wherever the case goes.
 *
 * Speed: while the reviewer looks at one case, the next one is already claimed (a
 * lease of its own, `after` = the case on screen) and its image decoded, so a verdict
 * swaps the picture at once and the verdict itself is sent in the background. Requests
 * that change leases run one after another (`pending`), so a prefetch never races the
 * verdict it follows. Leases still held when the page goes away are released.
 *
 * Safety: everything from upstream (metadata, ids) is put in the page with textContent,
 * never as HTML. The page shows a suggestion only when the API sent one.
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("review-config").textContent);
  const csrfToken = document.querySelector("[name=csrfmiddlewaretoken]").value;
  const byId = (id) => document.getElementById(id);
  const viewport = byId("viewport");
  const stageMessage = byId("stage-message");
  const statusLine = byId("status");
  const commentBox = byId("comment");
  const undoButton = byId("undo-button");
  const skipDialog = byId("skip-dialog");

  const REASONS = {
    human_only: "human review",
    shadow: "human review",
    assistance: "assisted review",
    low_confidence: "low model confidence",
    class_rule: "class rule",
    audit: "audit",
    model_error: "model could not score",
  };
  const EMPTY_POLL_MS = 5000;
  const LEASE_MS = config.leaseSeconds * 1000;
  // Below this much lease left, a verdict waits for the server's answer before moving on.
  const SAFE_MARGIN_MS = Math.min(10000, LEASE_MS / 4);
  const HEARTBEAT_MS = Math.max(1000, Math.min(30000, LEASE_MS / 3));
  const IDLE_MS = config.idleSeconds * 1000;

  const keyToLabel = new Map();
  for (const entry of config.labels) {
    for (const key of entry.keys || []) keyToLabel.set(key, entry.label);
  }
  const helpDialog = byId("help-dialog");
  const unsavedBox = byId("unsaved");
  const saliencyLayer = byId("saliency-layer");
  const opacityInput = byId("saliency-opacity");

  const state = {
    current: null,
    next: null,
    prefetching: null,
    pending: Promise.resolve(),
    lastVerdict: null,
    emptyTimer: null,
    advancing: false,
    saving: false,
    lastInput: performance.now(),
    unsaved: [],
  };
  window.loopgateReview = state;

  // --- API ----------------------------------------------------------------------------

  function urlFor(template, id) {
    return template.replace("/0/", "/" + encodeURIComponent(id) + "/");
  }

  async function api(method, url, body, options) {
    const init = {
      method: method,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken },
      keepalive: Boolean(options && options.keepalive),
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(url, init);
    let data = null;
    if (response.status !== 204) {
      try {
        data = await response.json();
      } catch (error) {
        data = null;
      }
    }
    return { status: response.status, ok: response.ok, data: data };
  }

  function errorText(result) {
    if (result.data && result.data.error && result.data.error.message) {
      return result.data.error.message;
    }
    return "the server answered " + result.status;
  }

  /** Run `step` after every earlier lease-changing request has finished. */
  function serially(step) {
    const run = state.pending.then(step, step);
    state.pending = run.catch(function () {});
    return run;
  }

  function announce(text, isError) {
    statusLine.textContent = text;
    statusLine.classList.toggle("error", Boolean(isError));
  }

  // --- Claiming and prefetching -------------------------------------------------------

  function preload(task) {
    const image = new Image();
    image.alt = "";
    image.draggable = false;
    image.decoding = "async";
    image.src = task.case.image_url;
    task.image = image;
    task.imageReady = image.decode().then(
      function () { return true; },
      function () { return false; }
    );
    return task;
  }

  /** The server says how long the lease has left; count down from that on the
   * monotonic clock, whatever the reviewer's wall clock says. */
  function leaseFrom(task, seconds_left) {
    task.localExpiry = performance.now() + Math.max(0, Number(seconds_left) || 0) * 1000;
    task.lapsedShown = false;
  }

  function received(task) {
    leaseFrom(task, task.seconds_left);
    task.comment = "";
    return preload(task);
  }

  async function claim(afterTaskId) {
    const result = await api("POST", config.urls.next, afterTaskId ? { after: afterTaskId } : {});
    if (result.status === 204) return null;
    if (!result.ok) throw new Error(errorText(result));
    return received(result.data);
  }

  function prefetch() {
    if (!state.current || state.next || state.prefetching) return;
    const after = state.current.id;
    state.prefetching = serially(function () { return claim(after); })
      .then(function (task) {
        if (!task) return;
        if (state.current && task.id === state.current.id) return;
        state.next = task;
      })
      .catch(function () {})
      .finally(function () { state.prefetching = null; });
  }

  function release(task) {
    if (!task) return Promise.resolve();
    return api("POST", urlFor(config.urls.release, task.id), undefined, { keepalive: true });
  }

  function leaseLeftMs(task) {
    return task.localExpiry - performance.now();
  }

  async function takeNext() {
    if (state.prefetching) await state.prefetching;
    let task = state.next;
    state.next = null;
    if (task && leaseLeftMs(task) <= 0) {
      serially(function () { return release(task); });
      task = null;
    } else if (task && leaseLeftMs(task) < SAFE_MARGIN_MS) {
      // review/next hands a held lease back renewed.
      const renewed = await serially(function () { return claim(null); });
      if (renewed && renewed.id === task.id) {
        leaseFrom(task, renewed.seconds_left);
      } else {
        if (renewed) state.next = renewed;
        serially(function () { return release(task); });
        task = null;
      }
    }
    if (!task) {
      task = state.next || (await serially(function () { return claim(null); }));
      state.next = null;
    }
    return task;
  }

  async function advance(keyAt) {
    if (state.advancing) return;
    state.advancing = true;
    clearTimeout(state.emptyTimer);
    state.current = null;
    try {
      const task = await takeNext();
      if (task) {
        await show(task, keyAt);
        prefetch();
      } else {
        showEmpty();
      }
    } catch (error) {
      announce("Could not get the next case: " + error.message, true);
      showEmpty();
    } finally {
      state.advancing = false;
    }
  }

  async function queueText() {
    const result = await api("GET", config.urls.queue);
    if (!result.ok || !result.data) return "";
    const c = result.data;
    const parts = [];
    if (c.leased) parts.push(c.leased + " being reviewed");
    if (c.cooling) {
      const back = c.next_back_at ? new Date(c.next_back_at).toLocaleTimeString() : "soon";
      parts.push(c.cooling + " skipped, back at " + back);
    }
    if (c.escalated && !c.is_admin) parts.push(c.escalated + " skipped too often, with the admins");
    if (c.answered) parts.push(c.answered + " waiting for another reviewer");
    const counts = byId("queue-counts");
    counts.textContent = c.available + " waiting" + (parts.length ? " · " + parts.join(" · ") : "");
    counts.dataset.available = String(c.available);
    return parts.join("; ");
  }

  function showEmpty() {
    const image = byId("case-image");
    if (image) image.hidden = true;
    saliencyLayer.hidden = true;
    commentBox.value = "";
    stageMessage.hidden = false;
    stageMessage.textContent = "No cases are waiting for you. Checking again every few seconds…";
    queueText().then(function (text) {
      if (text && !state.current) {
        stageMessage.textContent = "No cases are waiting for you (" + text + "). Checking again every few seconds…";
      }
    });
    byId("case-name").textContent = "—";
    byId("case-reason").textContent = "";
    byId("lease-left").textContent = "—";
    byId("suggestion").hidden = true;
    byId("adjudication").hidden = true;
    byId("metadata").replaceChildren();
    setLabelsEnabled(false);
    state.emptyTimer = setTimeout(function () { advance(null); }, EMPTY_POLL_MS);
  }

  // --- Showing a case -----------------------------------------------------------------

  /** Put ``task`` on screen. It becomes the current case only once its image is decoded,
   * so a key pressed meanwhile never judges a case the reviewer has not seen. */
  async function show(task, keyAt) {
    const ready = await task.imageReady;
    state.current = task;
    const shown = task.image;
    shown.id = "case-image";
    shown.className = "case-image";
    shown.alt = "Case " + (task.case.external_id || task.case.id);
    const old = byId("case-image");
    if (old) old.replaceWith(shown);
    else viewport.appendChild(shown);
    shown.hidden = false;
    saliencyLayer.hidden = true;
    stageMessage.hidden = ready;
    if (!ready) stageMessage.textContent = "The image could not be loaded.";
    // The case's own state: its comment and its zoom (a case starts fitted).
    commentBox.value = task.comment || "";
    if (task.zoom) zoom.restore(task.zoom);
    else zoom.fit();

    byId("case-name").textContent = task.case.external_id || String(task.case.id).slice(0, 8);
    byId("case-reason").textContent = task.escalated
      ? "skipped " + task.skip_count + " times"
      : task.adjudication
        ? "adjudication"
        : REASONS[task.reason] || task.reason;
    renderSuggestion(task.suggestion);
    saliencyFor(task);
    renderAdjudication(task);
    renderMetadata(task.case.metadata);
    setLabelsEnabled(true);
    tickLease();

    if (keyAt !== null && keyAt !== undefined) {
      requestAnimationFrame(function () {
        performance.measure("verdict-to-next-image", { start: keyAt, end: performance.now() });
      });
    }
  }

  // "Where the model looked": offered only where the API sent a suggestion. The review
  // screen swaps its <img> per case, so the overlay works on whichever one is shown.
  let saliency = null;
  function saliencyFor(task) {
    const button = byId("saliency-toggle");
    if (!button || !window.LoopgateSaliency) return;
    if (!saliency) {
      // The overlay is its own layer over the case image, so its opacity can be set.
      const currentImage = {
        get src() { return byId("case-image").src; },
        set src(url) {
          const showing = url !== byId("case-image").src;
          if (showing) saliencyLayer.src = url;
          saliencyLayer.hidden = !showing;
          byId("saliency-tools").hidden = !showing;
          zoom.apply();
        },
      };
      saliency = window.LoopgateSaliency.attach({ image: currentImage, button: button });
    }
    saliency.setCase(task.case.id, Boolean(task.suggestion));
    saliencyLayer.hidden = true;
    byId("saliency-tools").hidden = true;
  }

  function setOpacity(value) {
    const clamped = Math.max(0, Math.min(100, value));
    opacityInput.value = String(clamped);
    saliencyLayer.style.opacity = String(clamped / 100);
  }
  opacityInput.addEventListener("input", function () { setOpacity(Number(opacityInput.value)); });
  setOpacity(Number(opacityInput.value));

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function renderSuggestion(suggestion) {
    const box = byId("suggestion");
    box.replaceChildren();
    if (!suggestion) {
      box.hidden = true;
      return;
    }
    const title = element("h2", "Model suggestion", "visually-hidden");
    title.id = "suggestion-title";
    box.appendChild(title);
    const head = element("p", null, "suggestion-head");
    head.appendChild(element("span", "Model suggests ", "muted"));
    head.appendChild(element("strong", suggestion.label));
    head.appendChild(element("span", " " + Math.round(suggestion.confidence * 100) + "% confident", "muted"));
    box.appendChild(head);
    const scores = Object.entries(suggestion.scores || {}).sort(function (a, b) { return b[1] - a[1]; });
    const list = element("ul", null, "scores");
    for (const [label, score] of scores) {
      const item = element("li");
      item.appendChild(element("span", label, "score-label"));
      const bar = element("span", null, "score-bar");
      bar.style.setProperty("--share", String(Math.max(0, Math.min(1, Number(score) || 0))));
      bar.setAttribute("aria-hidden", "true");
      item.appendChild(bar);
      item.appendChild(element("span", (Number(score) * 100).toFixed(1) + "%", "score-value"));
      list.appendChild(item);
    }
    box.appendChild(list);
    box.hidden = false;
  }

  function renderAdjudication(task) {
    const box = byId("adjudication");
    box.replaceChildren();
    if (!task.adjudication) {
      box.hidden = true;
      return;
    }
    box.appendChild(element("h2", "Reviewers disagreed: your verdict decides"));
    const list = element("ul");
    for (const verdict of task.previous_verdicts || []) {
      const text = verdict.reviewer + ": " + verdict.label + (verdict.comment ? " — " + verdict.comment : "");
      list.appendChild(element("li", text));
    }
    box.appendChild(list);
    box.hidden = false;
  }

  function renderMetadata(metadata) {
    const list = byId("metadata");
    list.replaceChildren();
    const entries = Object.entries(metadata || {});
    if (!entries.length) return;
    for (const [key, value] of entries) {
      list.appendChild(element("dt", key));
      const shown = value !== null && typeof value === "object" ? JSON.stringify(value) : String(value);
      list.appendChild(element("dd", shown));
    }
  }

  function setLabelsEnabled(enabled) {
    for (const button of document.querySelectorAll(".label-button, #skip-button")) {
      button.disabled = !enabled;
    }
  }

  function tickLease() {
    const out = byId("lease-left");
    const task = state.current;
    if (!task) {
      out.textContent = "—";
      return;
    }
    // Never round expiry early: 0:00 shows only once the lease has really run out.
    const leftMs = leaseLeftMs(task);
    const left = Math.max(0, Math.ceil(leftMs / 1000));
    out.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
    out.classList.toggle("warn", left <= 30);
    if (leftMs <= 0 && !task.lapsedShown) {
      task.lapsedShown = true;
      announce(
        "Your lease ran out while you were away. Your verdict is still taken unless another reviewer has the case.",
        true
      );
    }
  }

  // --- Heartbeat ------------------------------------------------------------------------

  function active() {
    return document.visibilityState === "visible" && performance.now() - state.lastInput < IDLE_MS;
  }

  function heartbeat(task) {
    if (!task || task.heartbeatBusy) return Promise.resolve();
    task.heartbeatBusy = true;
    return api("POST", urlFor(config.urls.heartbeat, task.id)).then(function (result) {
      task.heartbeatBusy = false;
      if (result.ok) {
        leaseFrom(task, result.data.seconds_left);
        if (task === state.current) tickLease();
      } else if (result.status === 410 && task === state.current && !task.verdictSent) {
        announce("Another reviewer has this case now: " + errorText(result), true);
        advance(null);
      } else if (task === state.next && !result.ok) {
        state.next = null;
      }
    }, function () { task.heartbeatBusy = false; });
  }

  function heartbeats() {
    if (!active()) return;
    heartbeat(state.current);
    heartbeat(state.next);
  }

  function noteInput() {
    const wasIdle = !active();
    state.lastInput = performance.now();
    if (wasIdle) heartbeats();
  }
  for (const name of ["keydown", "pointerdown", "wheel"]) {
    document.addEventListener(name, noteInput, { capture: true, passive: true });
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") noteInput();
  });

  // --- Verdicts, skip, undo -----------------------------------------------------------

  function caseName(task) {
    return task.case.external_id || String(task.case.id).slice(0, 8);
  }

  function sendVerdict(entry) {
    return serially(function () {
      return api("POST", urlFor(config.urls.verdict, entry.task.id), {
        label: entry.label,
        comment: entry.comment,
      });
    }).then(function (result) {
      if (result.ok) {
        state.lastVerdict = result.data;
        announce("Saved: " + entry.label + " on " + caseName(entry.task) + ".");
        addRecent(result.data, true);
        unsavedRemove(entry);
      } else {
        entry.error = errorText(result);
        unsavedAdd(entry);
      }
      updateUndo();
      return result.ok;
    }, function (error) {
      entry.error = "the server could not be reached (" + error.message + ")";
      unsavedAdd(entry);
      return false;
    });
  }

  function giveVerdict(label, keyAt) {
    const task = state.current;
    if (state.saving || state.advancing || !task) {
      announce("Wait: " + (task ? "the last verdict is still being saved." : "no case is on screen yet."), true);
      return;
    }
    task.comment = commentBox.value.trim();
    task.verdictSent = true;
    const entry = { task: task, label: label, comment: task.comment };
    flash(label);
    const started = keyAt === undefined ? performance.now() : keyAt;
    if (leaseLeftMs(task) > SAFE_MARGIN_MS) {
      sendVerdict(entry);
      advance(started);
      return;
    }
    // Short or lapsed lease: hear the server's answer before moving on.
    state.saving = true;
    announce("Saving “" + label + "”…");
    sendVerdict(entry).then(function () {
      state.saving = false;
      advance(started);
    });
  }

  // --- Verdicts that were not saved ------------------------------------------------------

  function unsavedAdd(entry) {
    if (!state.unsaved.includes(entry)) state.unsaved.push(entry);
    renderUnsaved();
    announce("Verdict “" + entry.label + "” on " + caseName(entry.task) + " was not saved: " + entry.error, true);
  }

  function unsavedRemove(entry) {
    const at = state.unsaved.indexOf(entry);
    if (at >= 0) state.unsaved.splice(at, 1);
    renderUnsaved();
  }

  function renderUnsaved() {
    unsavedBox.replaceChildren();
    unsavedBox.hidden = !state.unsaved.length;
    if (!state.unsaved.length) return;
    unsavedBox.appendChild(element("h2", "Not saved (" + state.unsaved.length + ")"));
    const list = element("ul");
    for (const entry of state.unsaved) {
      const item = element("li");
      item.dataset.task = String(entry.task.id);
      item.dataset.label = entry.label;
      item.appendChild(element("span", "“" + entry.label + "” on " + caseName(entry.task) + ": " + entry.error));
      const retry = element("button", "Retry");
      retry.type = "button";
      retry.addEventListener("click", function () { sendVerdict(entry); });
      const drop = element("button", "Dismiss");
      drop.type = "button";
      drop.addEventListener("click", function () { unsavedRemove(entry); });
      item.appendChild(retry);
      item.appendChild(drop);
      list.appendChild(item);
    }
    unsavedBox.appendChild(list);
  }

  function flash(label) {
    for (const button of document.querySelectorAll(".label-button")) {
      if (button.dataset.label !== label) continue;
      button.classList.add("pressed");
      setTimeout(function () { button.classList.remove("pressed"); }, 180);
    }
  }

  function skipCurrent(task, reason) {
    if (!task || task !== state.current) {
      announce("Not skipped: the case changed while the dialog was open.", true);
      return;
    }
    task.comment = "";
    serially(function () {
      return api("POST", urlFor(config.urls.skip, task.id), { reason: reason });
    }).then(function (result) {
      announce(result.ok ? "Skipped (" + reason + ")." : "Skip failed: " + errorText(result), !result.ok);
    });
    advance(null);
  }

  async function undo() {
    await state.pending;
    const verdict = state.lastVerdict;
    if (!verdict || !verdict.undoable || Date.parse(verdict.undo_until) < Date.now()) {
      announce("Nothing to undo.", true);
      updateUndo();
      return;
    }
    if (state.prefetching) await state.prefetching;
    const result = await serially(function () {
      return api("POST", urlFor(config.urls.undo, verdict.id));
    });
    state.lastVerdict = null;
    updateUndo();
    if (!result.ok) {
      announce("Could not undo: " + errorText(result), true);
      loadRecent();
      return;
    }
    loadRecent();
    const returned = result.data.task;
    if (!returned) {
      announce("Undone. Another reviewer has that case now; it stays in the queue.");
      return;
    }
    const stale = state.next;
    state.next = state.current;
    if (stale) serially(function () { return release(stale); });
    clearTimeout(state.emptyTimer);
    const back = received(returned);
    back.comment = verdict.comment || "";
    await show(back, null);
    announce("Undone: “" + verdict.label + "” was withdrawn. Give your verdict again.");
  }

  function updateUndo() {
    const verdict = state.lastVerdict;
    const open = Boolean(verdict && verdict.undoable && Date.parse(verdict.undo_until) > Date.now());
    undoButton.disabled = !open;
    if (open) {
      const left = Math.ceil((Date.parse(verdict.undo_until) - Date.now()) / 1000);
      byId("undo-detail").textContent = " “" + verdict.label + "”, " + left + " s left";
      undoButton.dataset.left = left + " s";
    } else {
      byId("undo-detail").textContent = "";
      delete undoButton.dataset.left;
    }
  }

  // --- Recent verdicts ----------------------------------------------------------------

  function recentItem(verdict) {
    const item = element("li");
    item.dataset.verdict = verdict.id;
    const thumb = element("img", null, "thumb");
    thumb.src = verdict.image_url;
    thumb.alt = "";
    thumb.loading = "lazy";
    item.appendChild(thumb);
    const text = element("span", verdict.label, "recent-label");
    item.appendChild(text);
    const when = new Date(verdict.created_at);
    item.appendChild(element("time", when.toLocaleTimeString(), "muted"));
    if (verdict.retracted_at) {
      item.classList.add("retracted");
      item.appendChild(element("span", "undone", "badge"));
    }
    return item;
  }

  function addRecent(verdict) {
    const list = byId("recent");
    list.prepend(recentItem(verdict));
    while (list.children.length > 5) list.lastElementChild.remove();
  }

  async function loadRecent() {
    const result = await api("GET", config.urls.recent + "?limit=5");
    if (!result.ok) return;
    byId("recent").replaceChildren(...result.data.map(recentItem));
    const newest = result.data[0];
    state.lastVerdict = newest && newest.undoable ? newest : null;
    updateUndo();
  }

  // --- Zoom and pan -------------------------------------------------------------------

  const zoom = {
    scale: 1,
    fitScale: 1,
    x: 0,
    y: 0,
    apply: function () {
      const image = byId("case-image");
      if (!image) return;
      const transform = "translate(" + this.x + "px," + this.y + "px) scale(" + this.scale + ")";
      image.style.transform = transform;
      saliencyLayer.style.transform = transform;
      image.classList.toggle("pixelated", this.scale >= 3);
      byId("zoom-level").textContent = Math.round(this.scale * 100) + "%";
      if (state.current) {
        state.current.zoom = { scale: this.scale, fitScale: this.fitScale, x: this.x, y: this.y };
      }
    },
    restore: function (saved) {
      this.scale = saved.scale;
      this.fitScale = saved.fitScale;
      this.x = saved.x;
      this.y = saved.y;
      this.apply();
    },
    fit: function () {
      const image = byId("case-image");
      if (!image || !image.naturalWidth) return;
      const box = viewport.getBoundingClientRect();
      this.fitScale = Math.min(box.width / image.naturalWidth, box.height / image.naturalHeight);
      this.scale = this.fitScale;
      this.x = (box.width - image.naturalWidth * this.scale) / 2;
      this.y = (box.height - image.naturalHeight * this.scale) / 2;
      this.apply();
    },
    at: function (factor, cx, cy) {
      const next = Math.min(Math.max(this.scale * factor, this.fitScale * 0.5), Math.max(32, this.fitScale * 8));
      const ratio = next / this.scale;
      this.x = cx - (cx - this.x) * ratio;
      this.y = cy - (cy - this.y) * ratio;
      this.scale = next;
      this.apply();
    },
    centre: function (factor) {
      const box = viewport.getBoundingClientRect();
      this.at(factor, box.width / 2, box.height / 2);
    },
    pan: function (dx, dy) {
      this.x += dx;
      this.y += dy;
      this.apply();
    },
  };

  viewport.addEventListener("wheel", function (event) {
    event.preventDefault();
    const box = viewport.getBoundingClientRect();
    zoom.at(Math.exp(-event.deltaY * 0.0015), event.clientX - box.left, event.clientY - box.top);
  }, { passive: false });

  const pointers = new Map();
  let pinchDistance = null;
  viewport.addEventListener("pointerdown", function (event) {
    viewport.setPointerCapture(event.pointerId);
    pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
    pinchDistance = null;
  });
  viewport.addEventListener("pointermove", function (event) {
    const previous = pointers.get(event.pointerId);
    if (!previous) return;
    const current = { x: event.clientX, y: event.clientY };
    pointers.set(event.pointerId, current);
    if (pointers.size === 1) {
      zoom.pan(current.x - previous.x, current.y - previous.y);
      return;
    }
    const [a, b] = Array.from(pointers.values());
    const distance = Math.hypot(a.x - b.x, a.y - b.y);
    if (pinchDistance) {
      const box = viewport.getBoundingClientRect();
      zoom.at(distance / pinchDistance, (a.x + b.x) / 2 - box.left, (a.y + b.y) / 2 - box.top);
    }
    pinchDistance = distance;
  });
  function pointerEnd(event) {
    pointers.delete(event.pointerId);
    pinchDistance = null;
  }
  viewport.addEventListener("pointerup", pointerEnd);
  viewport.addEventListener("pointercancel", pointerEnd);
  viewport.addEventListener("dblclick", function () { zoom.fit(); });
  window.addEventListener("resize", function () { zoom.fit(); });

  for (const button of document.querySelectorAll("[data-zoom]")) {
    button.addEventListener("click", function () {
      const action = button.dataset.zoom;
      if (action === "fit") zoom.fit();
      else zoom.centre(action === "in" ? 1.25 : 0.8);
    });
  }

  // --- Input --------------------------------------------------------------------------

  for (const button of document.querySelectorAll(".label-button")) {
    button.addEventListener("click", function () { giveVerdict(button.dataset.label); });
    button.style.setProperty("--label-color", button.dataset.color || "var(--accent)");
  }
  byId("skip-button").addEventListener("click", openSkip);
  undoButton.addEventListener("click", undo);

  commentBox.addEventListener("input", function () {
    if (state.current) state.current.comment = commentBox.value;
  });
  byId("help-button").addEventListener("click", openHelp);

  function openHelp() {
    if (helpDialog.open || skipDialog.open) return;
    helpDialog.showModal();
  }
  helpDialog.addEventListener("keydown", function (event) {
    if (event.key === "?") {
      event.preventDefault();
      helpDialog.close();
    }
  });
  helpDialog.addEventListener("close", function () { viewport.focus(); });

  function openSkip() {
    if (!state.current || skipDialog.open) return;
    skipDialog.task = state.current;
    byId("skip-form").reset();
    skipDialog.returnValue = "";
    skipDialog.showModal();
    skipDialog.querySelector("input[type=radio]:checked").focus();
  }

  skipDialog.addEventListener("keydown", function (event) {
    if (event.target.id === "skip-other") return;
    const radios = skipDialog.querySelectorAll("input[type=radio]");
    const index = Number(event.key) - 1;
    if (index >= 0 && index < radios.length) {
      event.preventDefault();
      radios[index].checked = true;
      radios[index].focus();
    }
  });

  skipDialog.addEventListener("close", function () {
    // Cancelled or not, the keys go back to the image at once (not to a radio button
    // of the closed dialog, which keeps the focus until the browser's next update).
    viewport.focus();
    if (skipDialog.returnValue !== "skip") return;
    const choice = skipDialog.querySelector("input[type=radio]:checked").value;
    const details = byId("skip-other").value.trim();
    const reason = details ? (choice === "other" ? details : choice + ": " + details) : choice;
    skipCurrent(skipDialog.task, reason.slice(0, 200));
    skipDialog.task = null;
  });

  byId("skip-cancel").addEventListener("click", function () { skipDialog.close("cancel"); });

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || skipDialog.open || helpDialog.open) return;
    const target = event.target;
    // A field of a dialog that has just closed is not where the reviewer types.
    const typing = target instanceof HTMLElement && target.matches("textarea, input, select") &&
      !target.closest("dialog:not([open])");
    if (typing) {
      if (event.key === "Escape") target.blur();
      return;
    }
    const key = event.key.toLowerCase();
    if ((event.ctrlKey || event.metaKey) && key === "z") {
      event.preventDefault();
      undo();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    if (target instanceof HTMLElement && target.matches("input[type=range]") && key.startsWith("arrow")) return;
    if (keyToLabel.has(key)) {
      event.preventDefault();
      giveVerdict(keyToLabel.get(key), performance.now());
    } else if (key === "?") {
      event.preventDefault();
      openHelp();
    } else if (key === "n") {
      event.preventDefault();
      commentBox.focus();
    } else if (key === "i") {
      const panel = byId("instructions");
      if (panel) {
        event.preventDefault();
        panel.open = !panel.open;
      }
    } else if (key === "[" || key === "]") {
      event.preventDefault();
      setOpacity(Number(opacityInput.value) + (key === "]" ? 10 : -10));
    } else if (key === "s") {
      event.preventDefault();
      openSkip();
    } else if (key === "h" && saliency && !byId("saliency-toggle").hidden) {
      event.preventDefault();
      saliency.toggle();
    } else if (key === "u") {
      event.preventDefault();
      undo();
    } else if (key === "+" || key === "=") {
      zoom.centre(1.25);
    } else if (key === "-" || key === "_") {
      zoom.centre(0.8);
    } else if (key === "f") {
      zoom.fit();
    } else if (key.startsWith("arrow")) {
      event.preventDefault();
      const step = 40;
      const moves = { arrowleft: [step, 0], arrowright: [-step, 0], arrowup: [0, step], arrowdown: [0, -step] };
      zoom.pan(moves[key][0], moves[key][1]);
    }
  });

  // Leases still held when the page goes away go back to the queue at once.
  window.addEventListener("pagehide", function () {
    for (const task of [state.current, state.next]) {
      if (task) release(task);
    }
  });

  // A page restored from the back-forward cache released its leases when it was hidden.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) window.location.reload();
  });

  setInterval(function () {
    tickLease();
    updateUndo();
  }, 250);
  setInterval(heartbeats, HEARTBEAT_MS);

  loadRecent();
  advance(null);
})();
