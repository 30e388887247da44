// ohf's status page: fetch the panels (GET /ui/panels, with the bearer token under JWT auth)
// every few seconds and swap in place only the parts that changed. Read-only: it makes no other
// request. The token lives in this tab's sessionStorage and travels only in the Authorization
// header; the URL holds the machines' filter, never the token.
(() => {
  "use strict";

  const KEY = "ohf.token";
  const body = document.body;
  const auth = body.dataset.auth;
  const every = Number(body.dataset.refresh || "5") * 1000;
  const panels = document.getElementById("panels");
  const notice = document.getElementById("notice");
  const tokenForm = document.getElementById("token-form");
  const tokenInput = document.getElementById("token");
  const forget = document.getElementById("forget");
  const pause = document.getElementById("pause");
  // The one HTML sink: the fragment ohf rendered (every value escaped there). Under the page's
  // Trusted Types policy, DOMParser takes only what this policy hands it.
  const policy = window.trustedTypes
    ? window.trustedTypes.createPolicy(body.dataset.policy, { createHTML: (text) => text })
    : { createHTML: (text) => text };

  let busy = false;
  let again = false;
  let paused = false;

  const clock = () => new Date().toISOString().slice(11, 19) + " UTC";
  const say = (text) => {
    notice.textContent = text;
  };

  function ask(message) {
    panels.replaceChildren();
    if (forget) forget.hidden = true;
    tokenForm.hidden = false;
    say(message);
    tokenInput.focus();
  }

  async function reason(response) {
    try {
      const answer = await response.json();
      if (answer && typeof answer.message === "string") return answer.message;
    } catch (_) {
      // not JSON: the status line says enough
    }
    return `HTTP ${response.status}`;
  }

  function swap(text) {
    const fresh = new DOMParser().parseFromString(policy.createHTML(text), "text/html").body;
    const parts = fresh.querySelectorAll("[data-swap]");
    const first = parts.length && !document.getElementById(parts[0].id);
    if (first) {
      panels.replaceChildren(...Array.from(fresh.childNodes));
      return;
    }
    for (const part of parts) {
      const old = document.getElementById(part.id);
      if (old && !old.isEqualNode(part)) old.replaceWith(document.adoptNode(part));
    }
  }

  async function refresh() {
    if (busy) {
      again = true;
      return;
    }
    const token = sessionStorage.getItem(KEY);
    if (auth === "jwt" && !token) {
      if (tokenForm.hidden) ask("");
      return;
    }
    busy = true;
    try {
      const headers = { Accept: "text/html" };
      if (auth === "jwt") headers.Authorization = `Bearer ${token}`;
      const response = await fetch(`/ui/panels${location.search}`, {
        headers,
        cache: "no-store",
        credentials: "omit",
        redirect: "error",
      });
      if (response.status === 401 || response.status === 403) {
        sessionStorage.removeItem(KEY);
        ask(`Refused (${response.status}): ${await reason(response)}`);
        return;
      }
      if (!response.ok) {
        say(`Refresh failed at ${clock()}: ${await reason(response)}. The data shown are older.`);
        return;
      }
      swap(await response.text());
      if (forget) forget.hidden = false;
      say("");
    } catch (error) {
      say(`Refresh failed at ${clock()}: ${error.message}. The data shown are older.`);
    } finally {
      busy = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  }

  function filterBy(search) {
    history.replaceState(null, "", `/ui/${search}#machines`);
    refresh();
  }

  // The filter form and the "its machines" links: same URL as without JavaScript, no reload.
  panels.addEventListener("submit", (event) => {
    if (event.target.id !== "filters") return;
    event.preventDefault();
    const query = new URLSearchParams();
    for (const [name, value] of new FormData(event.target)) {
      if (value) query.set(name, value);
    }
    const search = query.toString();
    filterBy(search ? `?${search}` : "");
  });
  panels.addEventListener("click", (event) => {
    const link = event.target.closest("a.filter");
    if (!link) return;
    event.preventDefault();
    const request = link.dataset.request;
    for (const field of document.getElementById("filters").elements) {
      if (field.name) field.value = field.name === "request" ? request : "";
    }
    filterBy(request ? `?request=${encodeURIComponent(request)}` : "");
  });

  if (tokenForm) {
    tokenForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const value = tokenInput.value.trim();
      tokenInput.value = "";
      if (!value) return;
      sessionStorage.setItem(KEY, value);
      tokenForm.hidden = true;
      say("Loading…");
      refresh();
    });
  }
  if (forget) {
    forget.addEventListener("click", () => {
      sessionStorage.removeItem(KEY);
      ask("The token is forgotten.");
    });
  }
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume refresh" : "Pause refresh";
    if (!paused) refresh();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && !paused) refresh();
  });

  for (const element of document.querySelectorAll("[data-js]")) element.hidden = false;
  setInterval(() => {
    if (!paused && !document.hidden) refresh();
  }, every);
  if (auth === "jwt" || !panels.firstElementChild) refresh();
})();
