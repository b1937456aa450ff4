#!/usr/bin/env python3
"""scripts/dashboard-overflow.py URL WIDTH HEIGHT: opens URL in headless Chromium at WIDTH×HEIGHT
and prints `scrollWidth innerWidth` of the loaded page, read over the DevTools protocol (a
minimal WebSocket client, standard library only). Used by scripts/dashboard-screenshots."""
import base64, json, os, re, socket, subprocess, sys, tempfile, time, urllib.request

def ws_connect(url):
    m = re.match(r"ws://([^:/]+):(\d+)(/.*)", url)
    sock = socket.create_connection((m.group(1), int(m.group(2))), timeout=20)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {m.group(3)} HTTP/1.1\r\nHost: {m.group(1)}:{m.group(2)}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    if b" 101 " not in head.split(b"\r\n")[0]:
        raise SystemExit("DevTools refused the WebSocket: " + head.decode(errors="replace"))
    return sock

def ws_send(sock, text):
    data = text.encode()
    mask = os.urandom(4)
    header = bytes([0x81])
    n = len(data)
    header += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
    sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise SystemExit("DevTools closed the connection")
        buf += chunk
    return buf

def ws_recv(sock):
    b0, b1 = recv_exact(sock, 2)
    n = b1 & 0x7F
    if n == 126: n = int.from_bytes(recv_exact(sock, 2), "big")
    elif n == 127: n = int.from_bytes(recv_exact(sock, 8), "big")
    return recv_exact(sock, n).decode(errors="replace")

def main():
    url, width, height = sys.argv[1], sys.argv[2], sys.argv[3]
    profile = tempfile.mkdtemp(prefix="cw-chromium-")
    proc = subprocess.Popen(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                             f"--window-size={width},{height}", "--remote-debugging-port=0", f"--user-data-dir={profile}", url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        deadline = time.time() + 30
        while port is None and time.time() < deadline:
            line = proc.stderr.readline()
            m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if m: port = m.group(1)
        if port is None: raise SystemExit("chromium did not open DevTools within 30 s")
        for _ in range(100):
            pages = [t for t in json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json")) if t.get("type") == "page"]
            if pages and pages[0].get("url", "").startswith(url.split("#")[0][:20]): break
            time.sleep(0.1)
        sock = ws_connect(pages[0]["webSocketDebuggerUrl"])
        # Headless windows are at least 500 px wide: emulate the viewport, then load again.
        def call(ident, method, params):
            ws_send(sock, json.dumps({"id": ident, "method": method, "params": params}))
            while True:
                reply = json.loads(ws_recv(sock))
                if reply.get("id") == ident: return reply
        call(10_000, "Emulation.setDeviceMetricsOverride", {"width": int(width), "height": int(height), "deviceScaleFactor": 1, "mobile": False})
        call(10_001, "Page.navigate", {"url": url})
        time.sleep(0.5)
        expression = "document.readyState === 'complete' ? [document.documentElement.scrollWidth, window.innerWidth] : null"
        for attempt in range(100):
            ws_send(sock, json.dumps({"id": attempt + 1, "method": "Runtime.evaluate", "params": {"expression": expression, "returnByValue": True}}))
            while True:
                reply = json.loads(ws_recv(sock))
                if reply.get("id") == attempt + 1: break
            value = reply.get("result", {}).get("result", {}).get("value")
            if value:
                print(value[0], value[1])
                return
            time.sleep(0.1)
        raise SystemExit("the page did not finish loading")
    finally:
        proc.terminate()
        try: proc.wait(timeout=10)
        except subprocess.TimeoutExpired: proc.kill()

main()
