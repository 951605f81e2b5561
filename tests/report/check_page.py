"""Checks a report page as a browser rendered it.
Usage: check_page.py DOM.html SCREENSHOT.png MIN_CHARTS [TITLE...]
DOM.html is chromium's --dump-dom output (after scripts ran). Checks: the page's script ran
(data-ready=1) with no script errors (no data-errors), at least MIN_CHARTS charts, every chart has
drawn marks (bars, lines, points, cells or spans) and no 'no data' placeholder, a chart whose title
starts with each TITLE exists and drew marks, no chart is wider than the page's content box (1068 px:
its title and legend would be out of view when the page loads), and the screenshot PNG is a real
picture (decodable, more than a handful of distinct colours)."""
import struct
import sys
import zlib
from html.parser import HTMLParser

dom_path, png_path, min_charts = sys.argv[1], sys.argv[2], int(sys.argv[3])
titles = sys.argv[4:]
CONTENT_WIDTH = 1100 - 2 * 16  # body max-width minus its padding (report/src/html.cpp kStyle)
errors = []


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.body = {}
        self.charts = []  # per chart: number of marks
        self.names = []   # per chart: its aria-label (the title)
        self.widths = []
        self.depth = 0
        self.in_chart = False
        self.text_no_data = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if tag == "svg" and "chart" in (a.get("class") or "").split():
            self.charts.append(0)
            self.names.append(a.get("aria-label") or "")
            self.widths.append(float(a.get("width") or 0))
            self.in_chart = True
        elif self.in_chart and ((tag == "rect" and a.get("class") in ("bar", "cell", "span"))
                                or (tag == "polyline" and a.get("class") == "series")
                                or (tag == "circle" and a.get("class") == "dot")):
            self.charts[-1] += 1

    def handle_endtag(self, tag):
        if tag == "svg":
            self.in_chart = False

    def handle_data(self, data):
        if self.in_chart and data.strip() == "no data":
            self.text_no_data += 1


p = Page()
p.feed(open(dom_path, encoding="utf-8").read())
if p.body.get("data-ready") != "1":
    errors.append("the page's script did not run to the end (no data-ready=1)")
if p.body.get("data-errors"):
    errors.append("script errors: " + p.body["data-errors"])
if len(p.charts) < min_charts:
    errors.append(f"{len(p.charts)} charts, expected at least {min_charts}")
empty = [i for i, n in enumerate(p.charts) if n == 0]
if empty:
    errors.append(f"charts without marks: {empty}")
for t in titles:
    hits = [n for n, name in zip(p.charts, p.names) if name.startswith(t)]
    if not hits:
        errors.append(f"no chart titled {t!r}")
    elif not all(hits):
        errors.append(f"a chart titled {t!r} drew no marks")
wide = [(name, w) for name, w in zip(p.names, p.widths) if w > CONTENT_WIDTH]
if wide:
    errors.append(f"charts wider than the page ({CONTENT_WIDTH} px): {wide}")
if p.text_no_data:
    errors.append(f"{p.text_no_data} chart(s) say 'no data'")

# Decode the PNG (8-bit RGB/RGBA, non-interlaced, as chromium writes it) and count colours.
data = open(png_path, "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    errors.append("screenshot is not a PNG")
else:
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        if typ == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", chunk[:10])
        elif typ == b"IDAT":
            idat += chunk
        pos += 12 + n
    raw = zlib.decompress(idat)
    bpp = 4 if ctype == 6 else 3
    stride = w * bpp + 1
    colours = set()
    prev = bytearray(w * bpp)
    for y in range(0, h):
        line = bytearray(raw[y * stride + 1:(y + 1) * stride])
        f = raw[y * stride]
        for i in range(len(line)):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        prev = line
        if y % 7 == 0:
            for x in range(0, w, 5):
                colours.add(bytes(line[x * bpp:x * bpp + 3]))
    if len(colours) < 8:
        errors.append(f"screenshot looks blank ({len(colours)} colours)")

for e in errors:
    print(e, file=sys.stderr)
print(f"charts={len(p.charts)}")
sys.exit(1 if errors else 0)
