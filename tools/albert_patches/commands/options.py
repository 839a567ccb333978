"""The options several commands share, each declared once; a command adds those it uses."""
from pathlib import Path


def add_out(parser, root):
  parser.add_argument("--out", type=Path, default=Path(root) / "build" / "albert",
                      help="the patched tree (default: build/albert)")


def add_upstream(parser):
  parser.add_argument("--upstream", metavar="URL_OR_PATH",
                      help="where to fetch upstream: a git URL, a clone or a bundle "
                           "(default: $ALBERT_UPSTREAM, else the URL in upstream.lock)")
