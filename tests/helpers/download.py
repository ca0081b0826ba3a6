"""A local HTTP server (127.0.0.1) that serves a CamVid mirror, for the download tests."""
import hashlib
import http.server


class Handler(http.server.SimpleHTTPRequestHandler):
    requests: list = []
    ranges = False        # answer "Range: bytes=N-" with 206 (or 416 past the end)
    cut: set = set()      # paths whose body stops halfway (the full Content-Length is announced)

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        type(self).requests.append((self.path, self.headers.get("Range")))
        spec = self.headers.get("Range")
        if self.path in type(self).cut:
            data = open(self.translate_path(self.path), "rb").read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        if spec and type(self).ranges:                     # minimal "bytes=N-" support
            data = open(self.translate_path(self.path), "rb").read()
            start = int(spec[6:-1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Length", str(len(data) - start))
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            self.wfile.write(data[start:])
            return
        super().do_GET()


def publish(cam, split, names):
    """Write a list file with a foreign prefix and small files; return {relpath: sha256}."""
    lines, sums = [], {}
    for i, n in enumerate(names):
        for folder in (split, f"{split}annot"):
            data = f"{folder}/{n} {i}".encode() * 50
            (cam / folder).mkdir(exist_ok=True)
            (cam / folder / n).write_bytes(data)
            sums[f"{folder}/{n}"] = hashlib.sha256(data).hexdigest()
        lines.append(f"/SegNet/CamVid/{split}/{n} /SegNet/CamVid/{split}annot/{n}")
    (cam / f"{split}.txt").write_text("\n".join(lines) + "\n")
    sums[f"{split}.txt"] = hashlib.sha256((cam / f"{split}.txt").read_bytes()).hexdigest()
    return sums
