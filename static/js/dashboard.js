// The dashboard's script: connection indicator, staleness, reconnects, alert sounds.
// htmx and its ws extension do the swapping, reached only through static/js/htmx-events.js;
// this file never builds markup.
(function () {
  "use strict";

  var dashboard = document.getElementById("dashboard");
  if (!dashboard) return;

  // --- Connection state -----------------------------------------------------------------
  var indicator = document.getElementById("connection");
  var LABELS = {
    connecting: ["…", "Connecting"],
    connected: ["●", "Live"],
    reconnecting: ["↻", "Reconnecting…"],
    stale: ["⚠", "Stale — reconnecting"],
    offline: ["✕", "Offline"],
    tooMany: ["✕", "Too many dashboards open for this login; retrying in a minute"],
  };
  // The server sends a frame or a heartbeat every few seconds; this long without one (the
  // server says how long) means what the page shows may be out of date.
  var STALE_AFTER_MS = Number(dashboard.dataset.staleAfterMs) || 10000;
  var staleNotice = document.getElementById("stale-notice");
  var lastFrameAt = Date.now();
  var stale = false;
  var everOpened = false;
  var retries = 0;
  var reconnectTimer = null;
  // Close codes (CloseCode in violations/contract.py): the page decides on each; the
  // extension never reconnects by itself (static/js/htmx-events.js).
  var CLOSE_LOGGED_OUT = [4401, 4403];
  // 4409: this login already holds its share of sockets; a slot frees when a screen closes.
  var CLOSE_TOO_MANY = 4409;
  var TOO_MANY_RETRY_MS = 60000;
  // Full jitter, capped at 8 s: a wall screen should be back soon after a restart.
  function backoffMs(retry) {
    return Math.random() * Math.min(8000, 500 * Math.pow(2, retry));
  }

  function setState(state) {
    // Stale until a new socket opens: reconnect attempts do not make the numbers fresh.
    if (stale && (state === "connecting" || state === "reconnecting")) state = "stale";
    indicator.dataset.state = state;
    indicator.querySelector(".status-icon").textContent = LABELS[state][0];
    indicator.querySelector(".status-text").textContent = LABELS[state][1];
  }
  function setStale(value) {
    stale = value;
    staleNotice.hidden = !value;
    // On <body>: the listener's badge in the top bar is as old as the rest.
    if (value) document.body.dataset.stale = "";
    else delete document.body.dataset.stale;
  }
  function reconnectIn(ms) {
    window.clearTimeout(reconnectTimer);
    reconnectTimer = window.setTimeout(function () {
      reconnectTimer = null;
      link.reconnect();
    }, ms);
  }

  // Acknowledge what the page holds, about once a second: the server holds what it sent
  // against a window (512 KiB) and pauses a socket whose page stops taking frames. The
  // delay is jittered so a wall of screens never acks in step with the next push.
  var ACK_EVERY_MS = 1000;
  var ackTimer = null;
  function acknowledge() {
    ackTimer = null;
    var seq = document.getElementById("stream-position").dataset.seq;
    if (seq !== "") link.send(JSON.stringify({ type: "ack", seq: Number(seq) }));
  }

  var link = window.dashboardSocket(document.getElementById("dashboard-socket"), {
    connecting: function () {
      if (navigator.onLine === false) setState("offline");
      else setState(everOpened ? "reconnecting" : "connecting");
    },
    open: function () {
      everOpened = true;
      retries = 0;
      lastFrameAt = Date.now();
      setStale(false);
      setState("connected");
      // Say which event the page shows last, so the server sends only what it missed
      // (an empty position asks for a full refresh).
      var seq = document.getElementById("stream-position").dataset.seq;
      link.send(JSON.stringify({ type: "resume", since: seq === "" ? null : Number(seq) }));
    },
    message: function () {
      lastFrameAt = Date.now();
      if (ackTimer === null) {
        ackTimer = window.setTimeout(acknowledge, ACK_EVERY_MS * (0.5 + Math.random()));
      }
      playAlerts();
      showLastEventAge();
    },
    close: function (code) {
      if (CLOSE_LOGGED_OUT.indexOf(code) >= 0) {
        window.location.assign(dashboard.dataset.loginUrl);
      } else if (code === CLOSE_TOO_MANY) {
        setState("tooMany");
        reconnectIn(TOO_MANY_RETRY_MS);
      } else {
        setState(navigator.onLine === false ? "offline" : "reconnecting");
        reconnectIn(backoffMs(retries));
        retries += 1;
      }
    },
  });

  // A server that stops answering without closing the socket (a frozen process, a
  // half-open connection) sends no close event: only silence tells.
  window.setInterval(function () {
    if (!link.isOpen() || Date.now() - lastFrameAt <= STALE_AFTER_MS) return;
    setStale(true);
    setState("stale");
    window.clearTimeout(reconnectTimer);
    link.reconnect();
  }, 1000);

  window.addEventListener("offline", function () { setState("offline"); });
  window.addEventListener("online", function () {
    if (indicator.dataset.state === "offline") setState("reconnecting");
  });

  // --- Sound ----------------------------------------------------------------------------
  var STORAGE_KEY = "safety-dashboard.sound";
  var toggle = document.getElementById("sound-toggle");
  var blocked = document.getElementById("sound-blocked");
  var sounds = {};
  document.querySelectorAll("audio.alert-sound").forEach(function (audio) {
    sounds[audio.dataset.table] = audio;
  });
  var lastPlayed = {};
  var prefs = loadPrefs();

  function loadPrefs() {
    try {
      var saved = JSON.parse(window.localStorage.getItem(STORAGE_KEY) || "{}");
      return { enabled: saved.enabled === true, muted: Array.isArray(saved.muted) ? saved.muted : [] };
    } catch (error) {
      return { enabled: false, muted: [] };
    }
  }
  function savePrefs() {
    window.localStorage.setItem(STORAGE_KEY, JSON.stringify(prefs));
  }
  function showPrefs() {
    toggle.setAttribute("aria-pressed", String(prefs.enabled));
    toggle.textContent = prefs.enabled ? "Sound on — click to mute all" : "Enable sound";
    document.querySelectorAll("input.sound-type").forEach(function (box) {
      box.checked = prefs.muted.indexOf(box.dataset.table) < 0;
    });
  }

  function play(table, force) {
    var audio = sounds[table];
    if (!audio || (!force && (!prefs.enabled || prefs.muted.indexOf(table) >= 0))) return;
    if (!force) {
      // An alert: at most one per type per second, however many rows a burst brings.
      var now = Date.now();
      if (now - (lastPlayed[table] || 0) < 1000) return;
      lastPlayed[table] = now;
    }
    audio.currentTime = 0;
    var attempt = audio.play();
    if (attempt && attempt.then) {
      attempt.then(
        function () { blocked.hidden = true; },
        function (error) { if (error && error.name === "NotAllowedError") blocked.hidden = false; }
      );
    }
  }

  toggle.addEventListener("click", function () {
    prefs.enabled = !prefs.enabled;
    savePrefs();
    showPrefs();
    // Playing inside the click is what unlocks audio for the page.
    if (prefs.enabled) play(Object.keys(sounds)[0], true);
  });
  document.getElementById("sound-unblock").addEventListener("click", function () {
    blocked.hidden = true;
    play(Object.keys(sounds)[0], true);
  });
  document.querySelectorAll("input.sound-type").forEach(function (box) {
    box.addEventListener("change", function () {
      var table = box.dataset.table;
      prefs.muted = prefs.muted.filter(function (t) { return t !== table; });
      if (!box.checked) prefs.muted.push(table);
      savePrefs();
    });
  });
  showPrefs();

  function playAlerts() {
    var alert = document.getElementById("dashboard-alert");
    var inserted = alert.dataset.inserted || "";
    // Consumed once: later frames without an alert (heartbeats, the clock) replay nothing.
    alert.dataset.inserted = "";
    inserted.split(" ").forEach(function (table) {
      if (table) play(table, false);
    });
  }

  // --- Listener health: the server says when the last event happened; age it here, ----
  // by the server's clock: the heartbeat carries the server's time, and the page keeps
  // the difference, so a browser whose own clock is wrong does not misstate the age.
  var serverOffsetMs = 0;
  var heartbeatSeen = null;
  function readServerClock() {
    var beat = document.getElementById("heartbeat");
    var at = beat && Date.parse(beat.dataset.serverTime);
    if (!at || beat === heartbeatSeen) return;
    heartbeatSeen = beat; // each heartbeat swaps in a new element
    serverOffsetMs = at - Date.now();
  }
  function showLastEventAge() {
    readServerClock();
    var health = document.getElementById("listener-health");
    var time = health && health.querySelector(".last-event time");
    if (!time) return;
    var serverNow = Date.now() + serverOffsetMs;
    var seconds = Math.max(0, Math.round((serverNow - Date.parse(time.dateTime)) / 1000));
    time.textContent = seconds < 90 ? seconds + " s ago"
      : seconds < 5400 ? Math.round(seconds / 60) + " min ago"
      : Math.round(seconds / 3600) + " h ago";
  }
  window.setInterval(showLastEventAge, 1000);
  showLastEventAge();

  // A snapshot that fails to load becomes the placeholder (no inline onerror handlers).
  document.addEventListener("error", function (event) {
    var img = event.target;
    if (img instanceof HTMLImageElement && img.classList.contains("thumb")) {
      var placeholder = document.createElement("span");
      placeholder.className = "thumb placeholder";
      placeholder.textContent = "—";
      placeholder.setAttribute("aria-label", "No snapshot");
      img.replaceWith(placeholder);
    }
  }, true);
})();
