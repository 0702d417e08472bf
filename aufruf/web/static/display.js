/* aufruf wall display (/display/{L}): the calls of a location, live, with a gong and a spoken call.
 *
 * It follows /ws/locations/{L}/display: a snapshot first, then every event in seq order. An
 * event at or below the last seq is a duplicate and dropped; an event beyond the next seq is a
 * gap, and the display takes a fresh snapshot by connecting again. It reconnects by itself with
 * backoff and shows an offline state meanwhile. Only the last calls are kept, in memory and in
 * the page, so a day of calls does not make it grow.
 *
 * A display token given once as ?token= is kept in localStorage and cut from the address.
 * window.aufrufDisplay exposes what the display did (announced texts, seq, online) for tests.
 * No dependencies.
 */
(function () {
  "use strict";

  var dataElement = document.getElementById("display-data");
  if (!dataElement) return;
  var config = JSON.parse(dataElement.textContent);
  var S = config.strings;
  var KEEP = config.keep || 8;
  var BLINK_MS = 6000;
  var PING_MS = 15000;
  var SILENCE_MS = 45000; // the server pings after 20 s of silence; this much means a dead link
  var BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 10000];
  var KEPT_ANNOUNCEMENTS = 50;

  var hook = {
    announced: [], // the texts of the spoken calls, newest last (whether or not sound is on)
    spoken: 0, // utterances handed to speech synthesis
    gongs: 0,
    seq: -1,
    online: false,
    snapshots: 0,
    calls: function () { return state.calls.slice(); },
    audioState: function () { return audio ? audio.state : "none"; },
    receive: function (message) { receive(message); }, // as if it came on the socket
    keepAlive: function (now) { keepAlive(now); }, // the periodic check, as if at `now`
  };
  window.aufrufDisplay = hook;

  var state = { seq: -1, calls: [], waiting: {}, byCounter: {} };

  /* --- the device token: taken once from the address, then kept ------------------------- */
  var storageKey = "aufruf.display.token:" + config.location;
  var token = (function () {
    var params = new URLSearchParams(window.location.search);
    var given = params.get("token");
    if (given) {
      try { window.localStorage.setItem(storageKey, given); } catch (e) { /* kept in memory */ }
      params.delete("token");
      var rest = params.toString();
      window.history.replaceState(null, "", window.location.pathname + (rest ? "?" + rest : ""));
      return given;
    }
    try { return window.localStorage.getItem(storageKey); } catch (e) { return null; }
  })();

  function forgetToken() {
    token = null;
    try { window.localStorage.removeItem(storageKey); } catch (e) { /* nothing kept */ }
  }

  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : "";
    });
  }

  /* "A017" is read out as "A 17" */
  function spokenNumber(number) {
    var parts = /^([A-Za-z]+)0*(\d+)$/.exec(number || "");
    return parts ? parts[1] + " " + parts[2] : String(number);
  }

  /* --- what the page shows ---------------------------------------------------------------- */
  var els = {
    wall: document.getElementById("wall"),
    call: document.getElementById("call"),
    number: document.getElementById("call-number"),
    counter: document.getElementById("call-counter"),
    recent: document.getElementById("recent"),
    columns: document.querySelectorAll(".counter-column"),
    waiting: document.querySelectorAll("#waiting li"),
    offline: document.getElementById("offline"),
    notice: document.getElementById("notice"),
    clock: document.getElementById("clock"),
    sound: document.getElementById("sound"),
  };

  function blink(element) {
    if (!element) return;
    element.classList.remove("fresh");
    void element.offsetWidth; // restart the animation
    element.classList.add("fresh");
    window.clearTimeout(element.aufrufBlink);
    element.aufrufBlink = window.setTimeout(function () {
      element.classList.remove("fresh");
    }, BLINK_MS);
  }

  function renderCalls() {
    if (els.number) {
      var newest = state.calls[0];
      els.number.textContent = newest ? newest.number : "–";
      els.counter.textContent = newest ? newest.counter || "" : "–";
      var rows = els.recent.children;
      for (var i = 0; i < rows.length; i++) {
        var call = state.calls[i + 1];
        rows[i].hidden = !call;
        rows[i].children[0].textContent = call ? call.number : "";
        rows[i].children[1].textContent = call ? call.counter || "" : "";
      }
    }
    for (var c = 0; c < els.columns.length; c++) {
      var column = els.columns[c];
      var last = state.byCounter[column.getAttribute("data-counter")];
      column.querySelector(".counter-number").textContent = last ? last.number : "–";
    }
  }

  function renderWaiting() {
    for (var i = 0; i < els.waiting.length; i++) {
      var item = els.waiting[i];
      var count = state.waiting[item.getAttribute("data-service")] || 0;
      item.querySelector(".waiting-count").textContent = String(count);
    }
  }

  function addCall(call) {
    var kept = [call];
    for (var i = 0; i < state.calls.length && kept.length < KEEP; i++) {
      if (state.calls[i].number !== call.number) kept.push(state.calls[i]);
    }
    state.calls = kept;
    if (call.counter) state.byCounter[call.counter] = call;
  }

  function countersFrom(calls) {
    var byCounter = {};
    for (var i = calls.length - 1; i >= 0; i--) {
      if (calls[i].counter) byCounter[calls[i].counter] = calls[i];
    }
    return byCounter;
  }

  function freshElementFor(call) {
    if (els.call) return els.call;
    for (var c = 0; c < els.columns.length; c++) {
      if (els.columns[c].getAttribute("data-counter") === call.counter) return els.columns[c];
    }
    return null;
  }

  function showNotice(text) {
    els.notice.textContent = text || "";
    els.notice.hidden = !text;
  }

  function setOnline(online) {
    hook.online = online;
    els.offline.hidden = online;
    els.wall.classList.toggle("is-offline", !online);
  }

  /* --- the clock ---------------------------------------------------------------------------- */
  var clockFormat;
  try {
    clockFormat = new Intl.DateTimeFormat(config.lang, {
      hour: "2-digit", minute: "2-digit", timeZone: config.timezone,
    });
  } catch (e) {
    clockFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  }
  function tick() {
    var now = new Date();
    els.clock.textContent = clockFormat.format(now);
    els.clock.setAttribute("datetime", now.toISOString());
    window.setTimeout(tick, 1000 - (now.getTime() % 1000) + 5);
  }

  /* --- sound: a gong made with WebAudio, then the spoken call ------------------------------- */
  var audio = null;
  var queue = [];
  var announcing = false;

  function audioContext() {
    if (audio) return audio;
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return null;
    try { audio = new Context(); } catch (e) { return null; }
    audio.onstatechange = updateSoundControl;
    return audio;
  }

  function voices() {
    return "speechSynthesis" in window ? window.speechSynthesis.getVoices() : [];
  }

  function voiceFor(lang) {
    var all = voices();
    for (var i = 0; i < all.length; i++) {
      if (all[i].lang && all[i].lang.toLowerCase().indexOf(lang) === 0) return all[i];
    }
    return null;
  }

  function audioRuns() {
    var context = audioContext();
    return !!context && context.state === "running";
  }

  function updateSoundControl() {
    var noVoice = voices().length === 0;
    els.sound.hidden = audioRuns() && !noVoice;
    els.sound.textContent = audioRuns() && noVoice ? S.no_voice : S.sound_off;
    hook.soundOn = audioRuns() && !noVoice;
  }

  function enableSound() {
    var context = audioContext();
    if (context && context.state !== "running") {
      context.resume().then(updateSoundControl, updateSoundControl);
    }
    if ("speechSynthesis" in window) {
      window.speechSynthesis.speak(new SpeechSynthesisUtterance(" ")); // unlocks speech
    }
    updateSoundControl();
  }

  /* two soft bell tones, falling; returns how long they sound (ms) */
  function gong(context) {
    var start = context.currentTime + 0.05;
    [[784, 0], [523.25, 0.55]].forEach(function (tone) {
      var oscillator = context.createOscillator();
      var gain = context.createGain();
      oscillator.type = "sine";
      oscillator.frequency.value = tone[0];
      var at = start + tone[1];
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.5, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 1.6);
      oscillator.connect(gain).connect(context.destination);
      oscillator.start(at);
      oscillator.stop(at + 1.7);
    });
    hook.gongs += 1;
    return 1600;
  }

  function announce(call) {
    var texts = config.speak.map(function (speak) {
      return {
        lang: speak.lang,
        text: fill(speak.template, { number: spokenNumber(call.number), counter: call.counter || "" }),
      };
    });
    texts.forEach(function (entry) { hook.announced.push(entry.text); });
    if (hook.announced.length > KEPT_ANNOUNCEMENTS) {
      hook.announced.splice(0, hook.announced.length - KEPT_ANNOUNCEMENTS);
    }
    queue.push(texts);
    if (queue.length > 3) queue.shift(); // a burst of calls: the latest are spoken
    if (!announcing) nextAnnouncement();
  }

  function nextAnnouncement() {
    var texts = queue.shift();
    if (!texts) { announcing = false; return; }
    announcing = true;
    var wait = audioRuns() ? gong(audio) : 0;
    window.setTimeout(function () { speak(texts, 0); }, wait);
  }

  function speak(texts, index) {
    if (index >= texts.length || voices().length === 0) {
      window.setTimeout(nextAnnouncement, 400);
      return;
    }
    var utterance = new SpeechSynthesisUtterance(texts[index].text);
    utterance.lang = texts[index].lang;
    var voice = voiceFor(texts[index].lang);
    if (voice) utterance.voice = voice;
    var finished = false;
    function next() {
      if (finished) return;
      finished = true;
      speak(texts, index + 1);
    }
    utterance.onend = next;
    utterance.onerror = next;
    window.setTimeout(next, 12000); // a voice that never reports its end
    hook.spoken += 1;
    window.speechSynthesis.speak(utterance);
  }

  /* --- the socket --------------------------------------------------------------------------- */
  var socket = null;
  var failures = 0;
  var retryTimer = null;
  var lastHeard = 0;

  function socketUrl() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var url = scheme + window.location.host + "/ws/locations/" +
      encodeURIComponent(config.location) + "/display";
    return token ? url + "?token=" + encodeURIComponent(token) : url;
  }

  function scheduleConnect(delay) {
    if (retryTimer !== null) return;
    retryTimer = window.setTimeout(function () {
      retryTimer = null;
      connect();
    }, delay);
  }

  function retryDelay() {
    var base = BACKOFF_MS[Math.min(failures, BACKOFF_MS.length - 1)];
    failures += 1;
    return base + Math.floor(Math.random() * base * 0.3);
  }

  function drop(ws) {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try { ws.close(); } catch (e) { /* already closed */ }
  }

  function connect() {
    var ws;
    try {
      ws = new WebSocket(socketUrl());
    } catch (e) {
      setOnline(false);
      scheduleConnect(retryDelay());
      return;
    }
    socket = ws;
    lastHeard = Date.now();
    ws.onmessage = function (event) {
      lastHeard = Date.now();
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      receive(message);
    };
    ws.onclose = function (event) {
      if (socket !== ws) return;
      socket = null;
      setOnline(false);
      if (event.code === 4401 || event.code === 4403) {
        forgetToken(); // still shows the calls: watching needs no token
        showNotice(S.refused);
        scheduleConnect(0);
        return;
      }
      if (event.code === 4404) showNotice(S.gone);
      scheduleConnect(retryDelay());
    };
  }

  /* a gap, or a link that went quiet: start again from a fresh snapshot */
  function reconnect(delay) {
    if (socket) {
      drop(socket);
      socket = null;
    }
    setOnline(false);
    scheduleConnect(delay);
  }

  function receive(message) {
    if (message.type === "ping" || message.type === "pong") return;
    if (message.type === "snapshot") {
      failures = 0;
      state.seq = message.seq;
      state.calls = (message.called || []).slice(0, KEEP);
      state.byCounter = countersFrom(state.calls);
      state.waiting = message.waiting || {};
      hook.seq = state.seq;
      hook.snapshots += 1;
      if (els.notice.textContent === S.gone) showNotice("");
      setOnline(true);
      renderCalls();
      renderWaiting();
      return;
    }
    if (typeof message.seq !== "number" || state.seq < 0) return;
    if (message.seq <= state.seq) return; // a duplicate
    if (message.seq !== state.seq + 1) { // a gap: never guess
      reconnect(0);
      return;
    }
    state.seq = message.seq;
    hook.seq = state.seq;
    if (message.waiting) {
      state.waiting = message.waiting;
      renderWaiting();
    }
    if (message.type === "called" || message.type === "recalled") {
      var call = { number: message.number, counter: message.counter, at: message.at };
      addCall(call);
      renderCalls();
      blink(freshElementFor(call));
      announce(call);
    }
  }

  /* every PING_MS, with the time `now` (a test hands in a later one) */
  function keepAlive(now) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      if (now - lastHeard > SILENCE_MS) {
        reconnect(0);
      } else {
        socket.send(JSON.stringify({ type: "ping" }));
      }
    }
  }

  /* --- start ---------------------------------------------------------------------------------- */
  els.sound.addEventListener("click", enableSound);
  document.addEventListener("pointerdown", function () { if (!hook.soundOn) enableSound(); });
  if ("speechSynthesis" in window) {
    window.speechSynthesis.addEventListener("voiceschanged", updateSoundControl);
  }
  audioContext();
  updateSoundControl();
  tick();
  setOnline(false);
  window.setInterval(function () { keepAlive(Date.now()); }, PING_MS);
  connect();
})();
