/* aufruf phone view (/t/{token}): the ticket's figures, live over /ws/tickets/{token}.
 *
 * The server sends the ticket whenever a field of it changes; the page shows it in a polite
 * live region. When the ticket is called the phone vibrates, where it can. It reconnects with
 * backoff and says so while the connection is lost, also when the link falls silent without
 * closing (the server pings a quiet socket every 20 s). The token is read from the address,
 * never from the page. No dependencies.
 */
(function () {
  "use strict";

  var dataElement = document.getElementById("ticket-data");
  if (!dataElement) return;
  var config = JSON.parse(dataElement.textContent);
  var S = config.strings;
  var BACKOFF_MS = [1000, 2000, 4000, 8000, 15000];
  var PING_MS = 20000;
  var SILENCE_MS = 45000; // the server pings after 20 s of silence; this much means a dead link

  var els = {
    view: document.getElementById("ticket-view"),
    message: document.getElementById("ticket-message"),
    figures: document.getElementById("ticket-figures"),
    ahead: document.getElementById("people-ahead"),
    wait: document.getElementById("estimated-wait"),
    connection: document.getElementById("connection"),
    leave: document.getElementById("leave"),
  };
  var shown = config.ticket;
  var hook = window.aufrufTicket = { updates: 0, vibrated: 0, ticket: shown, online: false };
  hook.keepAlive = function (now) { keepAlive(now); }; // the periodic check, as if at `now`

  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : "";
    });
  }

  function waitText(minutes) {
    if (minutes === null || minutes === undefined) return "–";
    if (minutes <= 0) return S.soon;
    return fill(S.minutes, { minutes: minutes });
  }

  function setText(element, text) {
    if (element.textContent !== text) element.textContent = text; // unchanged: nothing announced
  }

  function render(ticket) {
    var message = S.status[ticket.status] || "";
    setText(els.message, fill(message, { counter: ticket.counter || "" }));
    els.figures.hidden = ticket.status !== "waiting";
    setText(els.ahead, ticket.people_ahead === null ? "–" : String(ticket.people_ahead));
    setText(els.wait, waitText(ticket.estimated_wait_minutes));
    els.leave.hidden = ticket.status !== "waiting";
    els.view.className = "ticket-view status-" + ticket.status;
  }

  function receive(message) {
    if (message.type !== "ticket") return;
    var before = shown;
    shown = message;
    hook.ticket = message;
    hook.updates += 1;
    render(message);
    if (message.status === "called" && before.status !== "called" && navigator.vibrate) {
      navigator.vibrate([400, 200, 400]);
      hook.vibrated += 1;
    }
  }

  function setOnline(online) {
    hook.online = online;
    els.connection.textContent = online ? S.live : S.offline;
    els.connection.classList.toggle("offline", !online);
  }

  var failures = 0;
  var socket = null;
  var lastHeard = 0;

  function retry() {
    setOnline(false);
    var delay = BACKOFF_MS[Math.min(failures, BACKOFF_MS.length - 1)];
    failures += 1;
    window.setTimeout(connect, delay + Math.floor(Math.random() * delay * 0.3));
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var token = window.location.pathname.split("/").filter(Boolean).pop();
    var ws = new WebSocket(scheme + window.location.host + "/ws/tickets/" + token);
    socket = ws;
    lastHeard = Date.now();
    ws.onmessage = function (event) {
      lastHeard = Date.now();
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      if (message.type === "ticket") {
        failures = 0;
        setOnline(true);
      }
      receive(message);
    };
    ws.onclose = function (event) {
      if (socket !== ws) return;
      socket = null;
      if (event.code === 4404) {
        setText(els.message, S.gone);
        els.figures.hidden = true;
        els.leave.hidden = true;
        setOnline(true);
        return;
      }
      retry();
    };
  }

  /* every PING_MS, with the time `now` (a test hands in a later one) */
  function keepAlive(now) {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    if (now - lastHeard <= SILENCE_MS) {
      socket.send('{"type":"ping"}');
      return;
    }
    var dead = socket; // silent for too long: dropped, and a new link opened
    socket = null;
    dead.onmessage = dead.onclose = null;
    try { dead.close(); } catch (e) { /* already closed */ }
    retry();
  }

  window.setInterval(function () { keepAlive(Date.now()); }, PING_MS);
  connect();
})();
