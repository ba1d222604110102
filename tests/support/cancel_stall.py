"""A TCP proxy in front of a test cluster that forwards every connection as
it is, except a cancel request (PostgreSQL's CancelRequest packet, code
80877102: a new connection whose first 16 bytes are it), which it holds
`stall` seconds before passing it on. To the server this is a database host
that a cancel cannot reach in time: a SYN never answered, a slow path.

Python 3 standard library only. Found by review 7: the db pool waited on a
cancel in flight, and every request waited with it.
"""

import socket
import struct
import threading
import time

CANCEL_REQUEST = 80877102


class CancelStall:
    def __init__(self, cluster_port, stall):
        self.target = ("127.0.0.1", cluster_port)
        self.stall = stall
        self.cancels = 0  # cancel requests seen
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, database="portal"):
        return f"postgresql://portal@127.0.0.1:{self.port}/{database}"

    def close(self):
        self.closed = True
        self.listener.close()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    @staticmethod
    def _read(sock, n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def _serve(self, client):
        try:
            head = self._read(client, 8)
            length, code = struct.unpack("!II", head)
            if code == CANCEL_REQUEST:
                head += self._read(client, length - 8)
                self.cancels += 1
                time.sleep(self.stall)
            upstream = socket.create_connection(self.target)
            upstream.sendall(head)
        except (OSError, EOFError):
            client.close()
            return
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
