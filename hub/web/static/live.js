// Keeps the overview and a site's "now" card current: the hub pushes the visible sites over
// server-sent events (one site only, on a site page).
(function () {
  "use strict";
  const state = document.getElementById("live-state");
  const since = (iso) => {
    if (!iso) return "";
    const s = (Date.now() - Date.parse(iso)) / 1000;
    if (s >= 172800) return Math.floor(s / 86400) + " days ago";
    if (s >= 3600) return Math.floor(s / 3600) + " h ago";
    if (s >= 60) return Math.floor(s / 60) + " min ago";
    return Math.max(Math.floor(s), 0) + " s ago";
  };
  const set = (card, field, text, attrs) => {
    const el = card.querySelector('[data-field="' + field + '"]');
    if (!el) return;
    el.textContent = text;
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  };
  // As the filters interval and free_places in hub/web/templating.py write them.
  const known = (v) => v !== null && v !== undefined;
  const interval = (s) => known(s.low) && known(s.high) ? "(" + s.low + "–" + s.high + ")" : "";
  const free = (s) => {
    const least = s.free_at_least, most = s.free_at_most;
    if (!known(least) || !known(most)) return "";
    if (least === most) return least === 1 ? "1 place free" : least + " places free";
    return least + "–" + most + " places free";
  };
  const only = state && state.dataset.site;
  const show = (sites) => {
    for (const s of sites) {
      const card = document.querySelector('.card[data-site="' + CSS.escape(s.site) + '"]');
      if (!card) {
        newSite();
        continue;
      }
      set(card, "count", s.count === null ? "–" : String(s.count));
      set(card, "interval", interval(s));
      set(card, "free", free(s));
      set(card, "entries_today", String(s.entries_today || 0));
      set(card, "visitors_today", String(s.visitors_today || 0));
      set(card, "air", s.co2 ? "CO₂ " + s.co2 + " ppm · " + s.air : "", { "data-air": s.air || "" });
      set(card, "doors", "doors " + s.online + "/" + s.devices + " online" +
          (s.lagging ? " · " + s.lagging + " behind" : ""), { "data-down": String(s.devices - s.online) });
      set(card, "last_seen", since(s.last_seen) || "never", { datetime: s.last_seen || "" });
    }
    document.body.dataset.updated = String(Date.now());
  };
  // A site added since the overview was drawn: draw it again (at most twice a minute).
  const newSite = () => {
    if (only) return;
    const last = Number(sessionStorage.getItem("hafen-reloaded") || 0);
    if (Date.now() - last < 30000) return;
    sessionStorage.setItem("hafen-reloaded", String(Date.now()));
    location.reload();
  };
  if (!state || !window.EventSource) return;
  const feed = new EventSource("/ui/live" + (only ? "?site=" + encodeURIComponent(only) : ""));
  feed.addEventListener("sites", (e) => { show(JSON.parse(e.data)); });
  feed.onopen = () => { state.dataset.state = "live"; state.textContent = "live"; };
  feed.onerror = () => { state.dataset.state = "lost"; state.textContent = "reconnecting…"; };
  setInterval(() => {
    for (const t of document.querySelectorAll('time[data-field="last_seen"]')) {
      t.textContent = since(t.getAttribute("datetime")) || "never";
    }
  }, 10000);
})();
