"""A raw WebSocket peer speaking Engine.IO by hand (python3-websocket), for tests
that need to misbehave: send malformed packets, stop answering pings, stop reading."""
import json
import socket
import ssl

import websocket  # Debian's python3-websocket (websocket-client)

CLOSE = websocket.ABNF.OPCODE_CLOSE


class RawEio:
    def __init__(self, url, path="/lgbk_socketio/socket.io/", eio=4, timeout=10, rcvbuf=None, headers=None,
                 origin=None):
        ws_url = url.replace("http://", "ws://").replace("https://", "wss://") + f"{path}?EIO={eio}&transport=websocket"
        sockopt = [(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)] if rcvbuf else []
        extra = {"origin": origin} if origin else {}  # default: websocket-client sends http://host:port
        self.ws = websocket.create_connection(ws_url, timeout=timeout, sockopt=sockopt, header=headers or [],
                                              sslopt={"cert_reqs": ssl.CERT_NONE}, **extra)
        self.eio = eio
        op, data = self.recv()
        assert data.startswith("0{"), data
        self.open = json.loads(data[1:])
        if eio == 3:
            assert self.recv()[1] == "40"  # automatic connection to "/"

    def recv(self):
        """(opcode, text) of the next frame; control frames included. Reads frames
        raw: a close is reported, not answered (the server may have reset already)."""
        frame = self.ws.recv_frame()
        if frame.opcode == CLOSE:
            return frame.opcode, frame.data
        data = frame.data
        return frame.opcode, data.decode() if isinstance(data, bytes) else data

    def send(self, text):
        self.ws.send(text)

    def send_binary(self, data):
        self.ws.send_binary(data)

    def connect_ns(self, ns="/psdm_ws"):
        self.send(f"40{ns},")
        op, data = self.recv()
        assert data.startswith(f"40{ns},"), data
        return data

    def next_text(self, skip_pings=True):
        """The next text frame, answering server pings (v4) on the way when asked."""
        while True:
            op, data = self.recv()
            if op == CLOSE:
                raise AssertionError(f"closed: {close_info(data)}")
            if skip_pings and data == "2":
                self.send("3")
                continue
            return data

    def wait_close(self):
        """Reads (and drops) frames until the server's close; returns (code, reason)."""
        while True:
            op, data = self.recv()
            if op == CLOSE:
                return close_info(data)

    def close(self):
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001 - already gone is fine
            pass


def close_info(data):
    if len(data) < 2:
        return None, ""
    return int.from_bytes(data[:2], "big"), data[2:].decode(errors="replace")
