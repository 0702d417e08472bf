/* aufruf desk: choose a counter (/desk) and work at it (/desk/{C}).
 *
 * The desk follows /ws/counters/{C} (a state message after every change; no polling) and acts
 * through the JSON API with the session's CSRF token. It reconnects with backoff and shows an
 * offline banner meanwhile; errors from the API are shown in a live region. No dependencies.
 * B opens a dialog to book an appointment for a citizen (e.g. on the phone, without e-mail).
 */
(function () {
  "use strict";

  var dataElement = document.getElementById("desk-data");
  if (!dataElement) return;
  var config = JSON.parse(dataElement.textContent);
  var S = config.strings;
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.content : "";
  var messageBox = document.getElementById("desk-message");
  var statusBox = document.getElementById("desk-status");
  var enc = encodeURIComponent;

  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : "";
    });
  }

  function showError(text) {
    messageBox.classList.remove("ok");
    messageBox.textContent = text;
  }

  function showInfo(text) {
    messageBox.classList.add("ok");
    messageBox.textContent = text;
  }

  function clearMessage() {
    messageBox.textContent = "";
  }

  function announce(text) {
    if (!statusBox) return;
    statusBox.textContent = "";
    window.setTimeout(function () { statusBox.textContent = text; }, 50);
  }

  function loginUrl() {
    return "/login?next=" + enc(window.location.pathname);
  }

  function problemText(status, data) {
    if (status === 401) return S.expired;
    var reason = data && data.reason;
    if (reason && S.reasons[reason]) return S.reasons[reason];
    if (data && data.detail) return data.detail;
    return S.failed;
  }

  /* One JSON API call; resolves {status, data}, rejects with an Error carrying `status`. */
  function api(method, path, body) {
    var headers = { "Accept": "application/json", "X-CSRF-Token": csrf };
    var init = { method: method, headers: headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (response) {
      if (response.status === 204) return { status: 204, data: null };
      return response.json().catch(function () { return null; }).then(function (data) {
        if (response.ok) return { status: response.status, data: data };
        var error = new Error(problemText(response.status, data));
        error.status = response.status;
        error.data = data;
        throw error;
      });
    }, function () {
      var error = new Error(S.failed);
      error.status = 0;
      throw error;
    });
  }

  function fail(error) {
    showError(error.message);
    if (error.status === 401) window.setTimeout(function () { window.location.assign(loginUrl()); }, 1500);
  }

  /* --- /desk: choose a counter ---------------------------------------------------------- */

  function choosePage() {
    document.addEventListener("click", function (event) {
      var sit = event.target.closest("button[data-sit]");
      var leave = event.target.closest("button[data-leave]");
      var button = sit || leave;
      if (!button || button.disabled) return;
      var counter = sit ? sit.dataset.sit : leave.dataset.leave;
      button.disabled = true;
      clearMessage();
      api("POST", "/api/v1/counters/" + enc(counter) + (sit ? "/sit" : "/leave")).then(function () {
        if (sit) window.location.assign("/desk/" + enc(counter));
        else window.location.reload();
      }, function (error) {
        button.disabled = false;
        fail(error);
      });
    });
  }

  /* --- /desk/{C}: the desk -------------------------------------------------------------- */

  function deskPage() {
    var app = document.getElementById("desk-app");
    var connection = document.getElementById("connection");
    var offline = document.getElementById("offline");
    var offlineText = document.getElementById("offline-text");
    var dialog = document.getElementById("transfer-dialog");
    var sitButton = document.getElementById("sit");
    var leaveButton = document.getElementById("leave");
    var actionButtons = Array.prototype.slice.call(document.querySelectorAll("button[data-action]"));
    var byAction = {};
    actionButtons.forEach(function (b) { byAction[b.dataset.action] = b; });
    var timeFormat = new Intl.DateTimeFormat(config.lang, {
      hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: config.timezone
    });

    var state = null;          // the last state message
    var offset = 0;            // server clock minus this browser's clock, in ms
    var busy = false;          // an action is on its way
    var socket = null;
    var attempts = 0;
    var lastHeard = 0;
    var appointmentsLoaded = 0;

    function serverNow() { return Date.now() + offset; }
    function time(iso) { return timeFormat.format(new Date(iso)); }
    function minutesSince(iso) {
      return Math.max(0, Math.floor((serverNow() - Date.parse(iso)) / 60000));
    }
    function serviceNames(ids) {
      return ids.map(function (id) { return config.services[id] || id; }).join(", ");
    }
    function setText(node, text) {
      if (node.textContent !== text) node.textContent = text; // unchanged text is not re-read
    }
    function element(tag, className, text) {
      var node = document.createElement(tag);
      if (className) node.className = className;
      if (text !== undefined) node.textContent = text;
      return node;
    }

    /* rendering ------------------------------------------------------------------------- */

    function seatedHere() {
      return !config.seats || (state && state.counter.clerk === config.me);
    }

    function renderCurrent(current) {
      var box = document.getElementById("current");
      var number = document.getElementById("current-number");
      var stateLine = document.getElementById("current-state");
      var services = document.getElementById("current-services");
      var times = document.getElementById("current-times");
      box.classList.toggle("empty", !current);
      if (!current) {
        setText(number, "–");
        setText(stateLine, S.no_current);
        setText(services, "");
        setText(times, "");
        return;
      }
      setText(number, current.number);
      setText(stateLine, S.ticket_status[current.status] || current.status);
      setText(services, serviceNames(current.services));
      var parts = [];
      if (current.appointment) parts.push(fill(S.appointment_at, { time: time(current.appointment.start) }));
      if (current.arrived_at) {
        parts.push(fill(S.arrived, { time: time(current.arrived_at) }));
        parts.push(fill(S.waited, { minutes: minutesSince(current.arrived_at) }));
      }
      setText(times, parts.join(" · "));
    }

    function renderQueue(queue, waiting) {
      var list = document.getElementById("queue");
      var items = queue.map(function (ticket) {
        var item = element("li");
        item.appendChild(element("span", "number", ticket.number));
        var what = element("span", "services", serviceNames(ticket.services));
        if (ticket.priority) what.appendChild(element("span", "priority", " · " + S.priority));
        item.appendChild(what);
        var meta = [];
        if (ticket.appointment) meta.push(fill(S.appointment_at, { time: time(ticket.appointment.start) }));
        if (ticket.arrived_at) meta.push(fill(S.waited, { minutes: minutesSince(ticket.arrived_at) }));
        item.appendChild(element("span", "meta", meta.join(" · ")));
        return item;
      });
      if (!items.length) items.push(element("li", "empty", S.queue_empty));
      list.replaceChildren.apply(list, items);
      setText(document.getElementById("queue-count"), String(queue.length));
      var counts = document.getElementById("waiting-counts");
      counts.replaceChildren.apply(counts, Object.keys(waiting).map(function (service) {
        return element("li", "", (config.services[service] || service) + ": " + waiting[service]);
      }));
    }

    function setButton(action, visible, enabled) {
      var button = byAction[action];
      button.hidden = !visible;
      button.disabled = !enabled;
    }

    function render() {
      if (!state) return;
      var focused = document.activeElement;
      var counter = state.counter;
      var current = counter.current;
      var status = counter.status;
      var badge = document.getElementById("counter-status");
      setText(badge, S.counter_status[status] || status);
      badge.className = "badge badge-" + status;
      var clerk = counter.clerk;
      setText(document.getElementById("counter-clerk"), !clerk
        ? S.nobody_seated
        : clerk === config.me ? fill(S.seated_you, { name: clerk }) : clerk);
      if (config.seats) {
        sitButton.hidden = !!clerk;
        leaveButton.hidden = clerk !== config.me;
      }
      renderCurrent(current);
      renderQueue(state.queue, state.waiting);

      var may = seatedHere();
      var called = !!current && current.status === "called";
      setButton("call-next", true, may && status === "open");
      setButton("recall", true, may && called);
      setButton("start", true, may && called);
      setButton("done", true, may && !!current);
      setButton("no-show", true, may && !!current);
      setButton("transfer", true, may && !!current);
      setButton("pause", status !== "paused", may && status === "open");
      setButton("resume", status === "paused", may);
      setButton("open", status === "closed", may);
      setButton("close", status !== "closed", may && !current);
      if (dialog.open && byAction.transfer.disabled) dialog.close();

      // a button that just became unusable loses focus: give it to the next useful one
      if (focused && focused.dataset && focused.dataset.action && (focused.disabled || focused.hidden)) {
        var next = actionButtons.filter(function (b) { return !b.disabled && !b.hidden; })[0];
        if (next) next.focus();
      }
    }

    function renderAppointments(list) {
      var box = document.getElementById("appointments");
      var items = list.filter(function (a) { return a.status !== "expired"; }).map(function (a) {
        var item = element("li", a.status);
        if (a.status === "completed" || a.status === "no_show" || a.status === "cancelled") {
          item.classList.add("finished");
        }
        item.appendChild(element("span", "time", time(a.start)));
        item.appendChild(element("span", "what", a.code + " · " + serviceNames(a.services)));
        var meta = S.appointment_status[a.status] || a.status;
        if (a.ticket) meta += " · " + a.ticket;
        item.appendChild(element("span", "meta", meta));
        return item;
      });
      if (!items.length) items.push(element("li", "empty", S.no_appointments));
      box.replaceChildren.apply(box, items);
    }

    function loadAppointments() {
      appointmentsLoaded = Date.now();
      api("GET", "/api/v1/locations/" + enc(config.location) + "/appointments").then(function (result) {
        renderAppointments(result.data || []);
      }, function (error) {
        if (error.status === 401) fail(error);
      });
    }

    /* the location's ticket printers: a line when one needs care (aufruf.printer) ---------- */

    var printerState = document.getElementById("printer-state");
    var printersLoaded = 0;

    function renderPrinters(list) {
      var P = S.printers;
      var notes = [];
      list.forEach(function (p) {
        // `online` is the server's one rule (aufruf.printer.status): false only when known unreachable
        if (!p.online) notes.push(fill(P.offline, { name: p.name }));
        else if (p.paper === "out") notes.push(fill(P.paper_out, { name: p.name }));
        else if (p.paper === "low") notes.push(fill(P.paper_low, { name: p.name }));
        if (p.interrupted) notes.push(fill(P.cut_off, { name: p.name, count: p.interrupted }));
      });
      var link = element("a", "", P.link);
      link.href = "/admin/printers";
      printerState.replaceChildren(document.createTextNode(notes.join(" ") + " "), link);
      printerState.hidden = notes.length === 0;
    }

    function loadPrinters() {
      printersLoaded = Date.now();
      api("GET", "/api/v1/locations/" + enc(config.location) + "/printers").then(function (result) {
        renderPrinters(result.data || []);
      }, function () { /* the desk works without it */ });
    }

    /* the socket ------------------------------------------------------------------------- */

    function setConnection(kind, text) {
      connection.textContent = text;
      connection.classList.toggle("offline", kind !== "live");
    }

    function onState(message) {
      if (state && message.seq < state.seq) return; // older than what is shown
      offset = Date.parse(message.at) - Date.now();
      state = message;
      attempts = 0;
      offline.hidden = true;
      app.hidden = false;
      setConnection("live", S.live);
      render();
      if (Date.now() - appointmentsLoaded > 20000) loadAppointments();
      if (Date.now() - printersLoaded > 20000) loadPrinters();
    }

    function reconnectLater() {
      attempts += 1;
      var seconds = Math.min(30, Math.pow(2, attempts - 1)) * (0.75 + Math.random() * 0.5);
      var text = fill(S.offline, { seconds: Math.max(1, Math.round(seconds)) });
      offlineText.textContent = text;
      offline.hidden = false;
      setConnection("offline", text);
      window.setTimeout(connect, seconds * 1000);
    }

    function connect() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      var ws = new WebSocket(scheme + window.location.host + "/ws/counters/" + enc(config.counter));
      socket = ws;
      if (!state) setConnection("connecting", S.connecting);
      ws.onmessage = function (event) {
        lastHeard = Date.now();
        var message;
        try { message = JSON.parse(event.data); } catch (e) { return; }
        if (message.type === "counter") onState(message);
      };
      ws.onclose = function (event) {
        if (socket !== ws) return;
        socket = null;
        if (event.code === 4401) {
          showError(S.expired);
          window.location.assign(loginUrl());
          return;
        }
        if (event.code === 4403 || event.code === 4404) {
          setConnection("refused", fill(S.refused, { detail: event.reason }));
          showError(fill(S.refused, { detail: event.reason }));
          return;
        }
        reconnectLater();
      };
    }

    // the server pings after 20 s of silence: a socket silent for longer is dead
    window.setInterval(function () {
      if (socket && socket.readyState === WebSocket.OPEN && Date.now() - lastHeard > 50000) {
        socket.close();
      }
    }, 5000);
    // waits are shown in minutes: redraw them as time passes (no request)
    window.setInterval(render, 30000);

    /* acting ----------------------------------------------------------------------------- */

    function said(action, result, body) {
      var ticket = result.data || {};
      var number = ticket.number || "";
      switch (action) {
        case "call-next": return result.status === 204 ? null : fill(S.called, { number: number });
        case "recall": return fill(S.recalled, { number: number });
        case "start": return fill(S.started, { number: number });
        case "done": return fill(S.done, { number: number });
        case "no-show": return fill(S.no_show, { number: number });
        case "transfer":
          return fill(S.transferred, { number: number, service: config.services[body.service] || body.service });
        default:
          return fill(S.status_changed, { status: S.counter_status[ticket.status] || ticket.status });
      }
    }

    function act(action, body) {
      if (busy) return;
      busy = true;
      clearMessage();
      api("POST", "/api/v1/counters/" + enc(config.counter) + "/" + action, body).then(function (result) {
        if (action === "call-next" && result.status === 204) showInfo(S.nobody);
        var text = said(action, result, body);
        if (text) announce(text);
      }, fail).then(function () { busy = false; });
    }

    document.querySelector(".actions").addEventListener("click", function (event) {
      var button = event.target.closest("button[data-action]");
      if (!button || button.disabled) return;
      if (button.dataset.action === "transfer") {
        dialog.showModal();
        var first = dialog.querySelector("button[data-transfer]");
        if (first) first.focus();
        return;
      }
      act(button.dataset.action);
    });

    dialog.addEventListener("click", function (event) {
      var choice = event.target.closest("button[data-transfer]");
      if (choice) {
        dialog.close();
        act("transfer", { service: choice.dataset.transfer });
      } else if (event.target.closest("button[data-close-dialog]")) {
        dialog.close();
      }
    });
    dialog.addEventListener("close", function () {
      var back = byAction.transfer.disabled ? byAction["call-next"] : byAction.transfer;
      if (!back.disabled) back.focus();
    });

    sitButton.addEventListener("click", function () {
      clearMessage();
      api("POST", "/api/v1/counters/" + enc(config.counter) + "/sit").catch(fail);
    });
    leaveButton.addEventListener("click", function () {
      clearMessage();
      api("POST", "/api/v1/counters/" + enc(config.counter) + "/leave").then(function () {
        window.location.assign("/desk");
      }, fail);
    });

    /* booking for a citizen ------------------------------------------------------------------
     * Services (with how many of each) → the free days of the next 14 → a free time → who.
     * One availability request per choice of services answers all days; the day only filters.
     */

    function bookingDialog() {
      var B = config.booking;
      var box = document.getElementById("book-dialog");
      var opener = document.getElementById("book-open");
      var form = document.getElementById("book-form");
      var done = document.getElementById("book-done");
      var message = document.getElementById("book-message");
      var live = document.getElementById("book-status");
      var dayList = document.getElementById("book-days");
      var timeList = document.getElementById("book-times");
      var dayHint = document.getElementById("book-day-hint");
      var timeHint = document.getElementById("book-time-hint");
      var submit = document.getElementById("book-submit");
      var checks = Array.prototype.slice.call(form.querySelectorAll('input[name="service"]'));
      // where an error of each key is shown: a group of choices or one field
      var places = {
        services: "book-services", day: "book-day", start: "book-time",
        name: "book-name", phone: "book-phone", email: "book-email", language: "book-language"
      };
      var dayName = new Intl.DateTimeFormat(config.lang, {
        weekday: "short", day: "2-digit", month: "2-digit", timeZone: "UTC"
      });
      var longDate = new Intl.DateTimeFormat(config.lang, {
        weekday: "long", day: "numeric", month: "long", year: "numeric", timeZone: "UTC"
      });
      var days = [];        // [{date, slots}] for the chosen services, at most 14
      var loading = 0;      // the number of the latest availability request; older ones are dropped
      var loaded = false;   // days holds an answer for the services chosen now
      var sending = false;
      var maximaAsked = false;

      function byId(id) { return document.getElementById(id); }
      // a local day as the server names it ("2026-11-23"), drawn as a UTC date
      function asDate(text) { return new Date(text.slice(0, 10) + "T00:00:00Z"); }
      // starts come with the location's offset: their clock time is the local time
      function clockOf(iso) { return iso.slice(11, 16); }
      function quantityOf(check) { return check.closest("li").querySelector(".book-quantity"); }
      function chosen(name) {
        var radio = form.querySelector('input[name="' + name + '"]:checked');
        return radio ? radio.value : null;
      }
      function say(text) {
        live.textContent = "";
        window.setTimeout(function () { live.textContent = text; }, 50);
      }

      function need() {
        var list = [];
        checks.forEach(function (check) {
          if (!check.checked) return;
          for (var n = Number(quantityOf(check).value); n > 0; n--) list.push(check.value);
        });
        return list;
      }

      function quantitiesFit() {
        return checks.every(function (check) {
          if (!check.checked) return true;
          var input = quantityOf(check);
          var n = Number(input.value);
          return Number.isInteger(n) && n >= 1 && n <= Number(input.max);
        });
      }

      /* errors -------------------------------------------------------------------------- */

      function controlsOf(key) {
        var place = byId(places[key]);
        return place.tagName === "FIELDSET"
          ? Array.prototype.slice.call(place.querySelectorAll("input"))
          : [place];
      }

      function markInvalid(key, text) {
        byId(places[key] + "-error").textContent = text;
        var place = byId(places[key]);
        (place.closest(".field") || place).classList.add("field-invalid");
        controlsOf(key).forEach(function (c) { c.setAttribute("aria-invalid", "true"); });
      }

      function clearInvalid(key) {
        byId(places[key] + "-error").textContent = "";
        var place = byId(places[key]);
        (place.closest(".field") || place).classList.remove("field-invalid");
        controlsOf(key).forEach(function (c) { c.removeAttribute("aria-invalid"); });
      }

      function clearErrors() {
        message.textContent = "";
        Object.keys(places).forEach(clearInvalid);
      }

      function focusOn(key) {
        var usable = controlsOf(key).filter(function (c) { return !c.disabled; });
        var target = usable.filter(function (c) { return c.checked; })[0] || usable[0];
        if (!target && key === "start") return focusOn("day");
        if (target) target.focus();
      }

      function showProblems(problems) {
        problems.forEach(function (problem) { markInvalid(problem[0], problem[1]); });
        focusOn(problems[0][0]);
      }

      // a field the API names in extra[].key ("services[1]" is a service too)
      function keyOf(apiKey) {
        var key = String(apiKey || "").replace(/\[\d+\]$/, "");
        if (key === "service") key = "services";
        return key !== "day" && Object.prototype.hasOwnProperty.call(places, key) ? key : null;
      }

      /* days and times ------------------------------------------------------------------ */

      function chip(group, index, value, main, sub) {
        var label = element("label", "chip");
        var radio = document.createElement("input");
        radio.type = "radio";
        radio.name = group;
        radio.id = group + "-" + index;
        radio.value = value;
        var face = element("span", "chip-face");
        face.appendChild(element("span", "chip-main", main));
        if (sub) face.appendChild(element("span", "chip-sub", sub));
        label.appendChild(radio);
        label.appendChild(face);
        return label;
      }

      function renderTimes(date, keep) {
        var day = days.filter(function (d) { return d.date === date; })[0];
        var slots = day ? day.slots : [];
        timeList.replaceChildren.apply(timeList, slots.map(function (start, i) {
          var label = chip("book-time", i, start, clockOf(start));
          label.querySelector("input").checked = start === keep;
          return label;
        }));
        timeHint.textContent = day ? "" : B.choose_day;
      }

      function renderDays(keepDay, keepStart) {
        var free = days.filter(function (d) { return d.slots.length; });
        var day = free.some(function (d) { return d.date === keepDay; }) ? keepDay
          : free.length ? free[0].date : null;
        dayList.replaceChildren.apply(dayList, days.map(function (d, i) {
          var label = chip("book-day", i, d.date, dayName.format(asDate(d.date)),
            d.slots.length ? fill(B.free, { count: d.slots.length }) : B.none_free);
          var radio = label.querySelector("input");
          radio.disabled = !d.slots.length;
          radio.checked = d.date === day;
          return label;
        }));
        if (!need().length) dayHint.textContent = B.choose_service;
        else if (!loaded) dayHint.textContent = B.loading;
        else dayHint.textContent = free.length ? "" : B.no_days;
        renderTimes(day, day === keepDay ? keepStart : null);
      }

      /* Ask for the free times of the chosen services; keep the day (and time) if still free. */
      function loadDays(keepDay, keepStart) {
        var services = need();
        var ticket = ++loading;
        days = [];
        loaded = false;
        if (!services.length || !quantitiesFit()) {
          renderDays();
          if (services.length) {
            dayHint.textContent = "";
            markInvalid("services", B.invalid.quantity);
          }
          return Promise.resolve();
        }
        renderDays();
        var query = "location=" + enc(config.location) + services.map(function (s) {
          return "&service=" + enc(s);
        }).join("");
        return api("GET", "/api/v1/availability?" + query).then(function (result) {
          if (ticket !== loading) return;
          days = ((result.data && result.data.days) || []).slice(0, 14);
          loaded = true;
          renderDays(keepDay, keepStart);
        }, function (error) {
          if (ticket !== loading) return;
          renderDays();
          if (error.status === 400) markInvalid("services", B.invalid.quantity);
          else message.textContent = error.message;
          if (error.status === 401) fail(error);
        });
      }

      function askMaxima() {
        if (maximaAsked) return;
        maximaAsked = true;
        api("GET", "/api/v1/services?lang=" + enc(config.lang)).then(function (result) {
          (result.data || []).forEach(function (service) {
            checks.forEach(function (check) {
              if (check.value === service.id) quantityOf(check).max = String(service.max_quantity);
            });
          });
        }, function () { maximaAsked = false; });
      }

      /* booking ------------------------------------------------------------------------- */

      function serviceList(services) {
        var counts = {};
        services.forEach(function (s) { counts[s] = (counts[s] || 0) + 1; });
        return Object.keys(counts).map(function (s) {
          return (counts[s] > 1 ? counts[s] + "× " : "") + (config.services[s] || s);
        }).join(", ");
      }

      function showDone(appointment, body) {
        var when = fill(B.when, {
          date: longDate.format(asDate(appointment.start)), time: clockOf(appointment.start)
        });
        var text = fill(B.booked, { code: appointment.code, when: when });
        if (!box.open) {       // closed while on its way: the code must not get lost
          showInfo(text);
          return;
        }
        byId("book-code").textContent = appointment.code;
        byId("book-done-when").textContent = when;
        byId("book-done-services").textContent = serviceList(appointment.services || body.services);
        byId("book-done-note").textContent = appointment.status !== "confirmed" ? B.not_confirmed
          : body.email ? fill(B.mail_sent, { email: body.email }) : B.no_mail;
        form.hidden = true;
        done.hidden = false;
        byId("book-done-heading").focus();
        say(text);
      }

      function refused(error, body) {
        var data = error.data || {};
        if (error.status === 409 && data.reason === "slot_taken") {
          message.textContent = B.slot_taken;
          loadDays(chosen("book-day")).then(function () { focusOn("start"); });
          return;
        }
        var problems = (error.status === 400 && data.extra || []).map(function (item) {
          var key = keyOf(item.key);
          return key ? [key, B.invalid[key]] : null;
        }).filter(Boolean);
        if (problems.length) {
          if (problems.some(function (p) { return p[0] === "start"; })) {
            // the time is no longer bookable (e.g. too soon now): offer what is free now
            loadDays(chosen("book-day")).then(function () { showProblems(problems); });
          } else {
            showProblems(problems);
          }
          return;
        }
        message.textContent = data.reason === "closed" ? B.closed : error.message;
        if (error.status === 401) fail(error);
      }

      form.addEventListener("submit", function (event) {
        event.preventDefault();
        if (sending) return;
        clearErrors();
        var services = need();
        var start = chosen("book-time");
        var name = byId("book-name").value.trim();
        var problems = [];
        if (!services.length) problems.push(["services", B.invalid.services]);
        else if (!quantitiesFit()) problems.push(["services", B.invalid.quantity]);
        else if (!chosen("book-day")) problems.push(["day", B.invalid.day]);
        else if (!start) problems.push(["start", B.invalid.start]);
        if (!name) problems.push(["name", B.invalid.name]);
        if (problems.length) {
          showProblems(problems);
          return;
        }
        var body = {
          location: config.location, services: services, start: start, name: name,
          language: byId("book-language").value
        };
        var phone = byId("book-phone").value.trim();
        var email = byId("book-email").value.trim();
        if (phone) body.phone = phone;
        if (email) body.email = email;
        sending = true;
        submit.disabled = true;
        say(B.booking);
        api("POST", "/api/v1/appointments", body).then(function (result) {
          showDone(result.data, body);
          loadAppointments();
        }, function (error) {
          refused(error, body);
        }).then(function () {
          sending = false;
          submit.disabled = false;
        });
      });

      /* choosing ------------------------------------------------------------------------ */

      checks.forEach(function (check) {
        check.addEventListener("change", function () {
          quantityOf(check).disabled = !check.checked;
          clearInvalid("services");
          loadDays(chosen("book-day"));
        });
        quantityOf(check).addEventListener("input", function () {
          clearInvalid("services");
          loadDays(chosen("book-day"));
        });
      });
      dayList.addEventListener("change", function (event) {
        clearInvalid("day");
        clearInvalid("start");
        renderTimes(event.target.value);
      });
      timeList.addEventListener("change", function () { clearInvalid("start"); });
      ["name", "phone", "email", "language"].forEach(function (key) {
        byId(places[key]).addEventListener("input", function () { clearInvalid(key); });
      });

      /* opening and closing ------------------------------------------------------------- */

      function reset() {
        form.reset();                       // the language goes back to the page's
        checks.forEach(function (check) { quantityOf(check).disabled = true; });
        clearErrors();
        if (checks.length === 1) {          // one service: nothing to choose
          checks[0].checked = true;
          quantityOf(checks[0]).disabled = false;
        }
        form.hidden = false;
        done.hidden = true;
        loadDays();
      }

      function open() {
        if (box.open) return;
        reset();
        box.showModal();
        askMaxima();
        (checks[0] || byId("book-name")).focus();
      }

      opener.addEventListener("click", open);
      byId("book-again").addEventListener("click", function () {
        reset();
        (checks[0] || byId("book-name")).focus();
      });
      box.addEventListener("click", function (event) {
        if (event.target.closest("button[data-close-book]")) box.close();
      });
      box.addEventListener("cancel", function (event) {
        if (sending) event.preventDefault();  // the answer carries the code: wait for it
      });
      box.addEventListener("close", function () {
        loading += 1;
        opener.focus();
      });

      return { key: opener.dataset.key, open: open, isOpen: function () { return box.open; } };
    }

    function typing(target) {
      return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
    }

    var booking = bookingDialog();

    document.addEventListener("keydown", function (event) {
      if (event.defaultPrevented || event.repeat || event.ctrlKey || event.metaKey || event.altKey) return;
      if (typing(event.target) || dialog.open || booking.isOpen() || !state) return;
      var key = (event.key || "").toLowerCase();
      if (key === booking.key) {
        event.preventDefault();
        booking.open();
        return;
      }
      var candidates = actionButtons.filter(function (b) { return b.dataset.key === key && !b.hidden; });
      if (!candidates.length) return;
      event.preventDefault();
      var usable = candidates.filter(function (b) { return !b.disabled; })[0];
      if (usable) usable.click();
    });

    connect();
  }

  if (config.page === "choose") choosePage();
  if (config.page === "desk") deskPage();
})();
