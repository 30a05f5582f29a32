// The line page: a scan starts a unit on the selected slot; each tile follows its slot over server-sent events.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const serial = $("serial");
  const choices = ["product", "printer", "slot"];
  const WORDS = { idle: "Waiting for a unit", busy: "Working…", pass: "PASS", fail: "FAIL", void: "VOID" };
  const tiles = {};

  // The operator picks product, printer and slot once; the page remembers them.
  for (const id of choices) {
    const saved = localStorage.getItem("station-" + id);
    if (saved && [...$(id).options].some((o) => o.value === saved)) $(id).value = saved;
    $(id).addEventListener("change", () => { localStorage.setItem("station-" + id, $(id).value); select($("slot").value); focusScan(); });
  }

  function focusScan() { serial.focus(); serial.select(); }

  function problem(text) {
    $("problem").textContent = text || "";
    $("problem").hidden = !text;
  }

  function select(slot) {
    document.querySelectorAll(".tile").forEach((t) => t.classList.toggle("selected", t.dataset.slot === slot));
  }

  async function call(url, body) {
    const response = await fetch(url, {
      method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {}), credentials: "same-origin",
    });
    const reply = await response.json().catch(() => ({ error: "the station answered " + response.status }));
    if (!response.ok) throw new Error(reply.error || ("the station answered " + response.status));
    return reply;
  }

  function render(tile) {
    tiles[tile.slot] = tile;
    const box = document.querySelector('.tile[data-slot="' + CSS.escape(tile.slot) + '"]');
    if (!box) return;
    const verdict = box.querySelector(".verdict");
    verdict.className = "verdict " + tile.status;
    verdict.textContent = tile.status === "busy" && tile.step ? "Working: " + tile.step : WORDS[tile.status];
    box.querySelector(".claim").textContent = tile.display || "";
    box.querySelector(".serial").textContent = tile.serial ? "serial " + tile.serial : "";
    const reason = box.querySelector(".reason");
    reason.classList.toggle("passed", tile.status === "pass");
    reason.textContent = tile.status === "fail" ? "Failed at " + tile.step + ": " + tile.reason
      : (tile.status === "void" ? tile.reason : (tile.status === "pass" ? tile.message : ""));
    // Finished steps by name only; the step under way, or the one that failed, with its message.
    const steps = box.querySelector(".steps");
    steps.replaceChildren(...tile.steps.map((s, i) => {
      const li = document.createElement("li");
      const last = i === tile.steps.length - 1;
      const open = last && (tile.status === "busy" || tile.status === "fail");
      li.className = open ? (tile.status === "fail" ? "failed" : "current") : "done";
      li.textContent = open ? s.step + ": " + s.message : s.step;
      li.title = s.message;
      return li;
    }));
    const img = box.querySelector(".label-preview");
    const labelled = tile.uci && tile.steps.some((s) => s.step !== "label") || tile.status === "pass";
    if (tile.uci && labelled) {
      const src = "/devices/" + tile.uci + "/label.png";
      if (img.getAttribute("src") !== src) img.src = src;
      img.alt = "label of " + tile.display;
      img.hidden = false;
    } else { img.hidden = true; }
    box.querySelector(".actions").hidden = tile.status !== "fail";
    box.querySelector(".recent").textContent = tile.recent.length
      ? "Last units: " + tile.recent.map((r) => r.display + " " + r.verdict).join(", ") : "";
    if (tile.status === "pass" || tile.status === "fail") refreshCountsSoon();
  }

  // Verdicts arrive together when the stream (re)connects: one look at the counts serves them all.
  let countsTimer = null;
  function refreshCountsSoon() {
    clearTimeout(countsTimer);
    countsTimer = setTimeout(refreshCounts, 300);
  }

  // The database (a shared registry, above all) may be down: the banner says so and names it, the tiles keep
  // their units, and the page keeps asking until the station has reconnected by itself.
  async function refreshCounts() {
    let state, response;
    try {
      response = await fetch("/line/state", { credentials: "same-origin" });
      state = await response.json();
    } catch (error) { return; /* the station restarts: the next look tries again */ }
    const down = response.ok ? state.database : (response.status === 503 && state.error);  // the session's look-up too
    $("database-down").textContent = down || "";
    $("database-down").hidden = !down;
    if (!response.ok || !state.today) return;
    const all = state.today[""] || { pass: 0, fail: 0 };
    $("count-pass").textContent = all.pass + " passed";
    $("count-fail").textContent = all.fail + " failed";
    document.querySelectorAll(".tile").forEach((box) => {
      const c = state.today[box.dataset.slot] || { pass: 0, fail: 0 };
      box.querySelector(".slot-counts").textContent = c.pass + " passed, " + c.fail + " failed today";
    });
  }

  function nextIdle(after) {
    const names = [...$("slot").options].map((o) => o.value);
    const start = names.indexOf(after);
    for (let i = 1; i <= names.length; i++) {
      const name = names[(start + i) % names.length];
      if (!tiles[name] || tiles[name].status !== "busy") return name;
    }
    return after;
  }

  $("scan").addEventListener("submit", async (event) => {
    event.preventDefault();
    problem("");
    const slot = $("slot").value;
    try {
      await call("/line/units", { product: $("product").value, printer: $("printer").value, slot, serial: serial.value.trim() });
      serial.value = "";
      $("slot").value = nextIdle(slot);
      select($("slot").value);
    } catch (error) {
      problem(error.message);
    }
    focusScan();
  });

  document.querySelectorAll(".tile").forEach((box) => {
    const slot = box.dataset.slot;
    box.addEventListener("click", (event) => { if (event.target.tagName !== "BUTTON") { $("slot").value = slot; select(slot); focusScan(); } });
    const act = (what, ask) => async () => {
      problem("");
      let body = {};
      if (ask) {
        const reason = window.prompt(ask);
        if (reason === null) { focusScan(); return; }
        body = { reason };
      }
      try { await call("/line/slots/" + encodeURIComponent(slot) + "/" + what, body); }
      catch (error) { problem(error.message); }
      focusScan();
    };
    box.querySelector(".retry").addEventListener("click", act("retry"));
    box.querySelector(".reprint").addEventListener("click", act("reprint", "Why print the label again? (for example: smudged)"));
    box.querySelector(".void").addEventListener("click", act("void", "Why void this claim ID for good?"));
  });

  // The browser reconnects a dropped stream itself, but gives up on a refusal (503: enough pages already
  // follow the line, or the station restarts): then this page tries again every few seconds.
  const LOST = "not following the line now (too many open line pages, or the station is restarting): trying again…";
  function follow() {
    const source = new EventSource("/line/events");
    source.addEventListener("tile", (event) => render(JSON.parse(event.data)));
    source.onopen = () => { if ($("problem").textContent === LOST) problem(""); };
    source.onerror = () => {
      if (source.readyState !== EventSource.CLOSED) return;
      problem(LOST);
      setTimeout(follow, 5000);
    };
  }
  follow();
  setInterval(refreshCounts, 5000);

  // Units that serialized themselves (/ioto/serialize): the page asks every few seconds, so a unit shows soon
  // after its agent got its ID. A label that did not print says why, and its Print button prints it on the
  // unit's factory printer, or, where none applies, on the printer chosen above.
  const section = $("serialized");
  const mayPrint = section.dataset.mayPrint === "yes";
  const rows = new Map();
  const POLL = 3000;
  let lastSerialized = null;

  function unitPrinter(unit) { return unit.printer || $("printer").value; }

  function unitRow(unit) {
    let li = rows.get(unit.uci);
    if (!li) {
      li = document.createElement("li");
      li.dataset.uci = unit.uci;
      for (const [tag, name] of [["a", "claim code"], ["span", "state"], ["span", "facts"], ["p", "reason"],
                                 ["img", "label-preview"], ["button", "print primary"]]) {
        const part = document.createElement(tag);
        part.className = name;
        li.append(part);
      }
      const img = li.querySelector("img");
      img.src = "/devices/" + encodeURIComponent(unit.uci) + "/label.png";
      img.alt = "label of " + unit.display;
      const claim = li.querySelector("a");
      claim.href = "/devices/" + encodeURIComponent(unit.uci);
      claim.textContent = unit.display;
      const button = li.querySelector("button");
      button.type = "button";
      button.addEventListener("click", () => printUnit(unit.uci, button));
      rows.set(unit.uci, li);
    }
    const notPrinted = !unit.printed && unit.state !== "void";
    li.classList.toggle("not-printed", notPrinted);
    const state = li.querySelector(".state");
    state.className = "state state-" + unit.state;
    state.textContent = unit.state;
    li.querySelector(".facts").textContent = [unit.product_name, unit.remote || "no address",
                                              unit.shown].join(" · ");
    li.querySelector(".reason").textContent = notPrinted ? "issued, label not printed: " + unit.reason : "";
    const button = li.querySelector("button");
    const printer = unitPrinter(unit);
    button.hidden = !(mayPrint && unit.may_print);
    button.disabled = !printer;
    button.dataset.printer = printer;
    button.textContent = printer ? "Print label on " + printer : "Print label (choose a printer above)";
    return li;
  }

  function renderSerialized(state) {
    lastSerialized = state;
    const shown = new Set(state.units.map((u) => u.uci));
    for (const uci of [...rows.keys()]) if (!shown.has(uci)) rows.delete(uci);
    $("serialized-units").replaceChildren(...state.units.map(unitRow));
    $("serialized-empty").hidden = state.units.length > 0;
    const table = $("serialized-addresses");
    table.hidden = state.addresses.length === 0;
    table.querySelector("tbody").replaceChildren(...state.addresses.map((a) => {
      const tr = document.createElement("tr");
      tr.dataset.remote = a.remote || "";
      for (const [text, name] of [[a.remote || "no address", "remote"], [a.issued, "issued"], [a.unregistered, "unregistered"]]) {
        const td = document.createElement("td");
        td.className = name;
        td.textContent = text;
        tr.append(td);
      }
      return tr;
    }));
  }

  async function refreshSerialized() {
    try {
      const response = await fetch("/line/serialized", { credentials: "same-origin" });
      if (response.ok) renderSerialized(await response.json());
    } catch (error) { /* the station restarts: the next look tries again */ }
    setTimeout(refreshSerialized, POLL);
  }

  async function printUnit(uci, button) {
    problem("");
    button.disabled = true;
    try { await call("/line/serialized/" + encodeURIComponent(uci) + "/print", { printer: button.dataset.printer }); }
    catch (error) { problem(error.message); }
    const response = await fetch("/line/serialized", { credentials: "same-origin" });
    if (response.ok) renderSerialized(await response.json());
    focusScan();
  }

  $("printer").addEventListener("change", () => { if (lastSerialized) renderSerialized(lastSerialized); });
  if (!section.hidden) refreshSerialized();  // a display screen may not read the units: it does not ask

  select($("slot").value);
  refreshCounts();
  focusScan();
})();
