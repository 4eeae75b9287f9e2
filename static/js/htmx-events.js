// The one place that knows htmx's WebSocket extension: its event names and how a socket is
// opened again, for htmx 2.0.x (the default) and htmx 4 (docs/frontend.md, "Moving to
// htmx 4"). static/js/dashboard.js calls only `window.dashboardSocket`.
//
// Neither extension reconnects by itself here: every close reaches the page's `close`
// hook with its code, and the page alone decides whether and when to open a new socket.
(function () {
  "use strict";

  var HTMX_4 = /^4\./.test(String(window.htmx && htmx.version));

  // element: the socket's own element, its URL in data-url. hooks: connecting(), open(),
  // message(), close(code). Returns send(text), isOpen() and reconnect() (drop this
  // socket, open anew).
  window.dashboardSocket = function (element, hooks) {
    var id = element.id;
    var socket = null; // the page's current socket
    var dropped = new WeakSet(); // sockets the page gave up on: their close is no news

    function current() {
      return document.getElementById(id);
    }
    function fromSocketElement(handler) {
      return function (event) {
        if (event.target === current()) handler(event);
      };
    }
    function opened(newSocket) {
      socket = newSocket;
      hooks.open();
    }
    function closed(closedSocket, code) {
      if (dropped.has(closedSocket)) return;
      if (closedSocket === socket) socket = null;
      hooks.close(code);
    }

    if (HTMX_4) {
      // Off: its reconnect-on-any-close, and its closing the socket in a background tab (a
      // wall screen is rarely the focused window).
      htmx.config.ws = Object.assign(htmx.config.ws || {}, {
        reconnect: false,
        pauseOnBackground: false,
      });
      document.addEventListener("htmx:before:ws:connection", fromSocketElement(hooks.connecting));
      document.addEventListener("htmx:after:ws:connection", fromSocketElement(function (event) {
        opened(event.detail.connection.socket);
      }));
      document.addEventListener("htmx:ws:close", fromSocketElement(function (event) {
        // "removed" and "cancelled" are the page's own doing (reconnect below).
        if (event.detail.reason === "closed") closed(event.detail.connection.socket, event.detail.code);
      }));
      document.addEventListener("htmx:after:ws:message", fromSocketElement(hooks.message));
    } else {
      // The 2.x extension retries 1006, 1011, 1012 and 1013 on its own before it says
      // htmx:wsClose. The page makes its sockets (htmx.createWebSocket is the extension's
      // documented factory) and takes each close first, so the extension never sees one.
      htmx.createWebSocket = function (url) {
        var made = (socket = new WebSocket(url, []));
        made.binaryType = htmx.config.wsBinaryType || "blob";
        made.addEventListener("close", function (event) {
          event.stopImmediatePropagation();
          closed(made, event.code);
        });
        return made;
      };
      document.addEventListener("htmx:wsConnecting", fromSocketElement(hooks.connecting));
      document.addEventListener("htmx:wsOpen", fromSocketElement(function (event) {
        opened(event.detail.event.target);
      }));
      document.addEventListener("htmx:wsAfterMessage", fromSocketElement(hooks.message));
    }

    // Connected only now, with every hook in place: htmx 4 may process the page before
    // this script runs, and would open the socket unheard.
    element.setAttribute(HTMX_4 ? "hx-ws:connect" : "ws-connect", element.dataset.url);
    htmx.process(element);

    return {
      send: function (text) {
        if (!socket || socket.readyState !== WebSocket.OPEN) return false;
        socket.send(text);
        return true;
      },
      isOpen: function () {
        return socket !== null && socket.readyState === WebSocket.OPEN;
      },
      reconnect: function () {
        // A silent socket's close handshake can take a minute: drop it now, ignore its close.
        if (socket) dropped.add(socket);
        socket = null;
        // A fresh copy of the element is a new connection; swapping the old one out closes
        // its socket. Both versions' public swap, so no extension internals.
        var old = current();
        if (HTMX_4) htmx.swap({ target: old, swap: "outerHTML", text: old.outerHTML });
        else htmx.swap(old, old.outerHTML, { swapStyle: "outerHTML" });
      },
    };
  };
})();
