// The batch run page: polls the run's state, shows its progress, and opens the batch's page when it is done.
"use strict";
(function () {
  const run = document.getElementById("run");
  if (!run) return;
  const bar = document.getElementById("run-progress");
  const status = document.getElementById("run-status");
  const error = document.getElementById("run-error");
  const nothing = document.getElementById("run-nothing");
  async function poll() {
    let state;
    try {
      const reply = await fetch(run.dataset.stateUrl, {headers: {Accept: "application/json"}});
      state = await reply.json();
      if (!reply.ok) throw new Error(state.error || reply.statusText);
    } catch (problem) {
      status.textContent = "Cannot reach the station (" + problem.message + "); trying again.";
      setTimeout(poll, 2000);
      return;
    }
    bar.max = Math.max(state.total, 1);
    bar.value = state.done;
    if (state.state === "running") {
      status.textContent = state.done.toLocaleString() + " of " + state.total.toLocaleString() + " claim IDs";
      setTimeout(poll, 500);
    } else if (state.state === "done") {
      status.textContent = "Done: " + state.total.toLocaleString() + " claim IDs.";
      window.location.assign(state.url);
    } else {
      status.textContent = "Failed.";
      error.textContent = state.error;
      error.hidden = false;
      nothing.hidden = false;
    }
  }
  poll();
})();
