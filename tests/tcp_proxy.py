"""A TCP proxy that can go silent: the way a connection dies behind a NAT or firewall.

`blackhole_existing()` makes every open connection swallow traffic in both directions
without closing it (no FIN, no RST), so only a timed round trip can notice. New
connections work normally.
"""

import socket
import threading

from devstack.ports import free_port


class SilenceableProxy:
    def __init__(self, target: str | tuple[str, int]) -> None:
        self.target = target  # a Unix socket path, or (host, port)
        self.port = free_port()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._connections: list[dict] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _open_upstream(self) -> socket.socket:
        if isinstance(self.target, str):
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.target)
            return upstream
        return socket.create_connection(self.target)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = self._open_upstream()
            state = {"silent": False, "sockets": (client, upstream)}
            with self._lock:
                self._connections.append(state)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink, state), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, state: dict) -> None:
        try:
            while data := source.recv(65536):
                if not state["silent"]:
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            if not state["silent"]:
                for sock in state["sockets"]:
                    sock.close()

    def blackhole_existing(self) -> int:
        """Silence every connection open now; returns how many there were."""
        with self._lock:
            for state in self._connections:
                state["silent"] = True
            return len(self._connections)

    def close(self) -> None:
        self._closed = True
        self._server.close()
        with self._lock:
            for state in self._connections:
                for sock in state["sockets"]:
                    sock.close()
