"""Released-model archives built from a tiny checkpoint, and a server for them on 127.0.0.1.

`pack_released` writes a .tar.gz in the layout of upstream's released archives (one folder
holding albert_config.json, model.ckpt-best.*, 30k-clean.model and 30k-clean.vocab).
`ArchiveServer` serves a folder over HTTP on 127.0.0.1 (a free port), records each request,
and can misbehave on request: the first path component picks how.
"""
import http.server
import io
import tarfile
import threading
import urllib.parse
from pathlib import Path


def add_bytes(tar, name, data, **attributes):
  info = tarfile.TarInfo(name)
  info.size = len(data)
  info.mode = 0o644
  for key, value in attributes.items():
    setattr(info, key, value)
  tar.addfile(info, io.BytesIO(data))


def pack_released(archive, top, config, checkpoint, spm_model=None, spm_vocab=None,
                  vocab_txt=None, extra=None):
  """ARCHIVE: TOP/albert_config.json, TOP/model.ckpt-best.* (CHECKPOINT's files renamed),
  and TOP/30k-clean.model and TOP/30k-clean.vocab, or TOP/vocab_chinese.txt (VOCAB_TXT's
  bytes) as in the Chinese archives. EXTRA(tar) may add members."""
  checkpoint = Path(checkpoint)
  with tarfile.open(archive, "w:gz") as tar:
    tar.add(str(config), arcname="%s/albert_config.json" % top)
    for path in sorted(checkpoint.parent.glob(checkpoint.name + ".*")):
      suffix = path.name[len(checkpoint.name):]
      tar.add(str(path), arcname="%s/model.ckpt-best%s" % (top, suffix))
    if spm_model:
      tar.add(str(spm_model), arcname="%s/30k-clean.model" % top)
    if spm_vocab:
      tar.add(str(spm_vocab), arcname="%s/30k-clean.vocab" % top)
    if vocab_txt is not None:
      add_bytes(tar, "%s/vocab_chinese.txt" % top, vocab_txt)
    if extra:
      extra(tar)
  return Path(archive)


class _Handler(http.server.BaseHTTPRequestHandler):
  """GET /MODE/NAME serves ROOT/NAME as MODE says:

  ok        as a file server does, honouring `Range: bytes=N-` with 206
  drop      the first GET of NAME sends the headers and DROP_AFTER bytes, then closes
  norange   ignores Range: always 200 and the whole file
  error500  500; missing: 404; html: a text/html page with status 200
  tofile    a 302 redirect to file://ROOT/NAME
  """

  def log_message(self, *args):  # quiet
    pass

  def do_GET(self):  # pylint: disable=invalid-name
    server = self.server
    mode, _, name = urllib.parse.urlsplit(self.path).path.lstrip("/").partition("/")
    record = dict(mode=mode, name=name, range=self.headers.get("Range"), status=None, sent=0)
    server.requests.append(record)
    path = server.root / name
    if mode == "error500":
      return self._status(record, 500)
    if mode == "html":
      return self._page(record)
    if mode == "tofile":
      record["status"] = 302
      self.send_response(302)
      self.send_header("Location", path.as_uri())
      self.send_header("Content-Length", "0")
      self.end_headers()
      return None
    if mode not in ("ok", "drop", "norange") or not path.is_file():
      return self._status(record, 404)
    data = path.read_bytes()
    start = 0
    if record["range"] and mode != "norange":
      start = int(record["range"].split("=")[1].rstrip("-"))
    first_drop = mode == "drop" and name not in server.dropped
    return self._send(record, data, start, first_drop)

  def _status(self, record, code):
    record["status"] = code
    self.send_error(code)

  def _page(self, record):
    body = b"<html><body>Sign in to continue</body></html>"
    record["status"] = 200
    self.send_response(200)
    self.send_header("Content-Type", "text/html; charset=utf-8")
    self.send_header("Content-Length", str(len(body)))
    self.end_headers()
    self.wfile.write(body)

  def _send(self, record, data, start, drop):
    if start:
      record["status"] = 206
      self.send_response(206)
      self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
    else:
      record["status"] = 200
      self.send_response(200)
    self.send_header("Content-Type", "application/x-tar")
    self.send_header("Content-Length", str(len(data) - start))
    self.end_headers()
    body = data[start:]
    if drop:
      self.server.dropped.add(record["name"])
      body = body[:self.server.drop_after]
    self.wfile.write(body)
    self.wfile.flush()
    record["sent"] = len(body)
    if drop:
      self.close_connection = True


class ArchiveServer:
  """An HTTP server for ROOT on 127.0.0.1, in a thread; a context manager."""

  def __init__(self, root, drop_after=1000):
    self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    self.httpd.root = Path(root)
    self.httpd.requests = []
    self.httpd.dropped = set()
    self.httpd.drop_after = drop_after
    self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

  @property
  def requests(self):
    return self.httpd.requests

  def url(self, mode):
    return "http://127.0.0.1:%d/%s" % (self.httpd.server_address[1], mode)

  def __enter__(self):
    self.thread.start()
    return self

  def __exit__(self, *exc):
    self.httpd.shutdown()
    self.httpd.server_close()
    self.thread.join()

