#!/usr/bin/env python3
"""The incremental backup benchmark (a command, not a test).

Compares backspace with its peers on the same generated data, in one run, and prints one
Markdown table (paste it into the README) plus the ratios the project's targets name.

What it does:

1. Generates a realistic portal under WORKDIR/portal, deterministically from --seed: rooms
   (top-level folders) with nested folders; office documents (.docx/.xlsx/.pptx: zip containers
   of XML, DEFLATE), PDFs (a text stream and an "image"), images (.jpg/.png: random bytes behind
   a small header), text (.txt/.md), CSV; many small files (4 KiB to 256 KiB), a few large ones
   (16 to 128 MiB, mostly incompressible), and about 5% of the files duplicated byte for byte in
   another room. Everything comes from random.Random(seed) (per-file generators are seeded from
   it), so two runs with the same --seed and --gigabytes write the same bytes.
2. Measures the disk's sequential write speed with dd (the bar for restore throughput).
3. Starts backspace on a fresh data directory, signs in, and uploads the portal through the API
   (rooms, folders, multipart uploads).
4. For every tool (backspace; tar czf, as DocSpace does; tar with zstd; restic; borg 1.2), on
   the same data and the same sequence of changes: a first backup, a backup with nothing
   changed, a backup after 1% of the files changed, a restore of the latest backup, then backups
   until there are --backups of them (1% changed between each), and the deletion of the middle
   one. backspace backs up to a `Local` target (storageType 3) under WORKDIR/targets/backspace.
   Changes are made to the files on disk and re-uploaded through the API (an upload of the same
   title into the same folder replaces the file's bytes), so every tool sees the same data.
5. Prints the table (time, throughput, storage, peak memory per operation and tool) and the
   ratios, and writes both with the raw numbers as JSON.

Before each timed operation the file system is synced (outside the timing), so that no tool pays
for the unwritten output of the one before it. Before each restore, the backup it restores from
(the repository, or the archive) is read once, outside the timing, so every tool restores from
the page cache: otherwise the tools' later writes evict the earlier ones' backups, and the
first tool in each step (backspace) would restore from the disk while the last ones read from
memory. A restore is timed until its files are on disk:
backspace syncs before it reports the end, and dd's bar uses conv=fdatasync, so a peer's restore
time includes a sync after its command (the JSON also has the time before that sync).

Peak memory: for backspace, the server's VmRSS sampled every 50 ms during each operation (VmHWM
is a whole-process-lifetime peak, so it is only recorded in the JSON); for the peers, the larger
of GNU time's "Maximum resident set size" and the sampled RSS of the command's process tree.

By default the tar peers write real archives for the first three backups only and the storage of
the whole series is computed as the sum of the archive sizes (a full archive every time, each the
size of the latest); --tar-series writes all of them (slow: tar czf runs at gzip speed).

usage:
  scripts/bench_repo.py [--gigabytes 2] [--seed 1] [--binary target/release/backspace]
                        [--workdir DIR] [--keep] [--backups 30] [--skip-peers] [--tar-series]
                        [--json PATH] [--generate-only]

  scripts/bench_repo.py --generate-only --gigabytes 0.05 --keep --workdir /var/tmp/g1
      generate the portal only and print its statistics and the SHA-256 of the tree
  scripts/bench_repo.py --gigabytes 0.05 --skip-peers --binary target/debug/backspace
      a quick check of the flow against backspace alone

Needs only the Python standard library, plus tar, gzip, zstd, restic, borg and GNU time for the
peers (installed with apt-get when missing). Build first: cargo build --release
"""
import argparse
import collections
import concurrent.futures
import hashlib
import http.client
import io
import json
import math
import os
import queue
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import zipfile
import zlib

EMAIL, PASSWORD = "bench@example.com", "Bench-Pass-123"
PASSPHRASE = "bench-passphrase"
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
GNU_TIME = "/usr/bin/time"
RECLAIM_WAIT_S = 90
ZIP_DATE = (2024, 5, 17, 9, 30, 0)

STARTED = time.monotonic()


class BenchError(Exception):
    """A failure with a message meant for the person running the benchmark."""


class DiskFull(BenchError):
    """Not enough free space for the next step."""


def log(msg):
    print(f"[{time.monotonic() - STARTED:7.1f}s] {msg}", file=sys.stderr, flush=True)


def tail(text, lines=15):
    return "\n".join(text.strip().splitlines()[-lines:])


# --------------------------------------------------------------------------------------------
# Files and processes
# --------------------------------------------------------------------------------------------


def run(cmd, *, env=None, cwd=None, ok=(0,), what=None):
    """Runs a command to completion; raises BenchError with its stderr when it fails."""
    try:
        p = subprocess.run(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True)
    except FileNotFoundError as e:
        raise BenchError(f"{what or cmd[0]}: cannot run {cmd[0]!r}: {e}") from None
    if p.returncode not in ok:
        raise BenchError(f"{what or ' '.join(cmd)} failed with exit status {p.returncode}:\n"
                         f"{tail(p.stderr or p.stdout)}")
    return p


def du_bytes(path):
    """Allocated bytes under path, like `du -s --block-size=1` (hard links counted once)."""
    if not os.path.exists(path):
        return 0
    seen, total = set(), 0
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                st = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue  # removed while we walked (a server cleaning up)
            if st.st_nlink > 1:
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MiB):
            h.update(chunk)
    return h.hexdigest()


def tree_digest(root):
    """SHA-256 over every directory and file (relative path and content) under root."""
    h = hashlib.sha256()
    entries = []
    for base, dirs, files in os.walk(root):
        rel = os.path.relpath(base, root)
        for d in dirs:
            entries.append(("D", os.path.normpath(os.path.join(rel, d)), None))
        for f in files:
            entries.append(("F", os.path.normpath(os.path.join(rel, f)), os.path.join(base, f)))
    for kind, rel, full in sorted(entries, key=lambda e: e[1]):
        h.update(f"{kind} {rel}\0".encode())
        if full:
            h.update(file_sha256(full).encode())
        h.update(b"\n")
    return h.hexdigest()


def free_bytes(path):
    return shutil.disk_usage(path).free


# --------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------


def status_kib(pid, field):
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM); 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def process_tree(root):
    """root and all its descendants, from the parent ids in /proc/*/stat."""
    children = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        children[int(fields[1])].append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


class PeakSampler:
    """Samples the RSS of a process (or the sum over its process tree) every 50 ms while active."""

    def __init__(self, pid, tree=False, interval=0.05):
        self.pid, self.tree, self.interval = pid, tree, interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self):
        pids = process_tree(self.pid) if self.tree else [self.pid]
        rss = sum(status_kib(p, "VmRSS") for p in pids)
        self.peak_kib = max(self.peak_kib, rss)

    def _loop(self):
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self):
        self.sample()
        self.start_kib = self.peak_kib
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.sample()
        return False


def run_measured(cmd, workdir, *, env=None, cwd=None, ok=(0,), what):
    """Runs a command under GNU time, sampling its process tree's RSS.

    Returns (seconds, peak KiB, stdout, stderr)."""
    logs = os.path.join(workdir, "logs")
    os.makedirs(logs, exist_ok=True)
    fd, time_file = tempfile.mkstemp(prefix="time-", dir=logs)
    os.close(fd)
    full = ([GNU_TIME, "-v", "-o", time_file] if os.access(GNU_TIME, os.X_OK) else []) + cmd
    with tempfile.TemporaryFile(dir=logs) as out, tempfile.TemporaryFile(dir=logs) as err:
        try:
            t0 = time.monotonic()
            p = subprocess.Popen(full, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        except FileNotFoundError as e:
            raise BenchError(f"{what}: cannot run {full[0]!r}: {e}") from None
        with PeakSampler(p.pid, tree=True) as sampler:
            rc = p.wait()
            elapsed = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    max_rss = 0
    with open(time_file) as f:
        timing = f.read()
    os.remove(time_file)
    if m := re.search(r"Maximum resident set size \(kbytes\): (\d+)", timing):
        max_rss = int(m.group(1))
    if rc not in ok:
        raise BenchError(f"{what} failed with exit status {rc}: {' '.join(cmd)}\n{tail(stderr or stdout)}")
    if rc != 0:
        log(f"  {what}: exit status {rc} (warnings): {tail(stderr, 3)}")
    return elapsed, max(max_rss, sampler.peak_kib), stdout, stderr


# --------------------------------------------------------------------------------------------
# The portal: generation and changes
# --------------------------------------------------------------------------------------------

SYLLABLES = ["ka", "lo", "mi", "ne", "ra", "tu", "sen", "dor", "vi", "pa", "gre", "sto", "lin", "mar",
             "qu", "el", "an", "is", "or", "fe", "bri", "chal", "den", "wy", "zo", "tha", "po", "ric"]

SMALL_KINDS = {"docx": 18, "xlsx": 10, "pptx": 5, "pdf": 14, "jpg": 14, "png": 6, "txt": 10, "md": 8, "csv": 15}
LARGE_KINDS = {"mp4": 45, "pptx": 20, "pdf": 20, "csv": 15}
OFFICE_MAIN = {"docx": "word/document.xml", "xlsx": "xl/worksheets/sheet1.xml", "pptx": "ppt/slides/slide1.xml"}
TEXT_KINDS = {"txt", "md", "csv"}


class Words:
    """A made-up vocabulary and a pool of sentences, from one seeded generator."""

    def __init__(self, rng):
        vocab = set()
        while len(vocab) < 2500:
            vocab.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))))
        self.vocab = sorted(vocab)
        self.sentences = []
        for _ in range(6000):
            words = rng.choices(self.vocab, k=rng.randint(5, 16))
            self.sentences.append(" ".join(words).capitalize() + rng.choice([".", ".", ".", "?", "!"]))
        self.avg = sum(map(len, self.sentences)) / len(self.sentences) + 1

    def title(self, rng, n=None):
        return " ".join(w.capitalize() for w in rng.choices(self.vocab, k=n or rng.randint(1, 3)))

    def sentences_for(self, rng, nbytes):
        return rng.choices(self.sentences, k=max(1, int(nbytes / self.avg) + 1))

    def text(self, rng, nbytes):
        """About nbytes of paragraphs (at least nbytes, cut to exactly nbytes)."""
        s = self.sentences_for(rng, nbytes)
        paras = [" ".join(s[i:i + 6]) for i in range(0, len(s), 6)]
        out = "\n\n".join(paras)
        while len(out) < nbytes:
            out += "\n\n" + " ".join(self.sentences_for(rng, nbytes - len(out)))
        return out[:nbytes]


def zip_bytes(members):
    """A zip of (name, bytes, deflate?) members with fixed dates: deterministic."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data, deflate in members:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    return buf.getvalue()


CONTENT_TYPES = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                 '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                 '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                 '<Default Extension="xml" ContentType="application/xml"/>'
                 '<Default Extension="jpeg" ContentType="image/jpeg"/></Types>')
RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="{target}"/></Relationships>')


def core_xml(words, rng):
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<cp:coreProperties '
            'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>' + words.title(rng, 4) +
            '</dc:title><dc:creator>' + words.title(rng, 2) + '</dc:creator></cp:coreProperties>')


def jpeg_bytes(rng, n):
    head = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x48\x00\x48\x00\x00\xff\xdb\x00\x43\x00"
    return head + rng.randbytes(max(0, n - len(head) - 2)) + b"\xff\xd9"


def png_bytes(rng, n):
    def chunk(kind, data):
        return (len(data).to_bytes(4, "big") + kind + data +
                zlib.crc32(kind + data).to_bytes(4, "big"))
    ihdr = chunk(b"IHDR", (1024).to_bytes(4, "big") + (768).to_bytes(4, "big") + bytes([8, 2, 0, 0, 0]))
    idat = rng.randbytes(max(0, n - 8 - len(ihdr) - 24))
    return b"\x89PNG\r\n\x1a\n" + ihdr + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def mp4_bytes(rng, n):
    ftyp = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    body = rng.randbytes(max(0, n - len(ftyp) - 8))
    return ftyp + (len(body) + 8).to_bytes(4, "big") + b"mdat" + body


def docx_bytes(words, rng, n):
    media = int(n * rng.uniform(0.4, 0.8)) if n >= 48 * KiB and rng.random() < 0.4 else 0
    paras = []
    for s in words.text(rng, max(512, (n - media) * 3)).split("\n\n"):
        style = '<w:pPr><w:pStyle w:val="Heading1"/></w:pPr>' if rng.random() < 0.08 else ""
        paras.append(f'<w:p>{style}<w:r><w:t xml:space="preserve">{s}</w:t></w:r></w:p>')
    doc = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document xmlns:w='
           '"http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>' +
           "".join(paras) + "<w:sectPr/></w:body></w:document>")
    members = [("[Content_Types].xml", CONTENT_TYPES, True),
               ("_rels/.rels", RELS.format(target="word/document.xml"), True),
               ("docProps/core.xml", core_xml(words, rng), True),
               ("word/document.xml", doc, True)]
    if media:
        members.append(("word/media/image1.jpeg", jpeg_bytes(rng, media), False))
    return zip_bytes(members)


def xlsx_bytes(words, rng, n):
    strings = rng.sample(words.vocab, 40)
    rows, size, r = [], 0, 0
    while size < n * 2.6:
        r += 1
        cells = [f'<c r="A{r}" t="s"><v>{rng.randrange(40)}</v></c>',
                 f'<c r="B{r}"><v>{rng.randrange(1, 10000)}</v></c>',
                 f'<c r="C{r}"><v>{rng.uniform(0, 5000):.2f}</v></c>',
                 f'<c r="D{r}"><v>{rng.randrange(100)}</v></c>',
                 f'<c r="E{r}" t="s"><v>{rng.randrange(40)}</v></c>']
        row = f'<row r="{r}">{"".join(cells)}</row>'
        rows.append(row)
        size += len(row)
    sheet = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns='
             '"http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>' +
             "".join(rows) + "</sheetData></worksheet>")
    shared = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns='
              '"http://schemas.openxmlformats.org/spreadsheetml/2006/main">' +
              "".join(f"<si><t>{s}</t></si>" for s in strings) + "</sst>")
    return zip_bytes([("[Content_Types].xml", CONTENT_TYPES, True),
                      ("_rels/.rels", RELS.format(target="xl/workbook.xml"), True),
                      ("docProps/core.xml", core_xml(words, rng), True),
                      ("xl/workbook.xml", '<workbook><sheets><sheet name="Sheet1" sheetId="1"/></sheets></workbook>', True),
                      ("xl/sharedStrings.xml", shared, True),
                      ("xl/worksheets/sheet1.xml", sheet, True)])


def pptx_bytes(words, rng, n, media_share):
    media = int(n * media_share)
    text = max(2 * KiB, (n - media) * 3)
    slides = max(1, min(60, text // (3 * KiB)))
    members = [("[Content_Types].xml", CONTENT_TYPES, True),
               ("_rels/.rels", RELS.format(target="ppt/presentation.xml"), True),
               ("docProps/core.xml", core_xml(words, rng), True),
               ("ppt/presentation.xml", f'<p:presentation sldCount="{slides}"/>', True)]
    for i in range(1, slides + 1):
        bullets = "".join(f"<a:p><a:r><a:t>{s}</a:t></a:r></a:p>"
                          for s in words.sentences_for(rng, text // slides))
        members.append((f"ppt/slides/slide{i}.xml",
                        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<p:sld xmlns:a='
                        '"http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:p='
                        '"http://schemas.openxmlformats.org/presentationml/2006/main"><p:cSld>'
                        f'<p:spTree><p:sp><p:txBody><a:p><a:r><a:t>{words.title(rng, 4)}</a:t></a:r></a:p>'
                        f"{bullets}</p:txBody></p:sp></p:spTree></p:cSld></p:sld>", True))
    images = max(1, min(12, media // (2 * MiB) + 1)) if media else 0
    for i in range(1, images + 1):
        members.append((f"ppt/media/image{i}.jpeg", jpeg_bytes(rng, media // images), False))
    return zip_bytes(members)


def pdf_bytes(words, rng, n, image_share):
    image = jpeg_bytes(rng, max(KiB, int(n * image_share)))
    lines = words.sentences_for(rng, max(256, n - len(image) - 800))
    content = ("BT /F1 10 Tf 50 800 Td 12 TL\n" + "".join(f"({s}) Tj T*\n" for s in lines) + "ET\n").encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> "
               b"/XObject << /Im1 6 0 R >> >> /Contents 4 0 R >>",
               b"<< /Length %d >>\nstream\n" % len(content) + content + b"endstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
               b"<< /Type /XObject /Subtype /Image /Width 1600 /Height 1200 /ColorSpace /DeviceRGB "
               b"/BitsPerComponent 8 /Filter /DCTDecode /Length %d >>\nstream\n" % len(image) + image + b"\nendstream"]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def csv_rows(words, rng, nbytes, start=1):
    """Rows of an order table; one 64-bit draw per row, sliced into its fields (fast)."""
    names = words.vocab[:300]
    regions = ("north", "south", "east", "west", "central")
    rows, size, i = [], 0, start
    bits = rng.getrandbits
    while size < nbytes:
        b = bits(64)
        qty, cents = 1 + (b & 511), 100 + ((b >> 9) & 0x1FFFF)
        row = (f"{i},2024-{1 + (b >> 26) % 12:02d}-{1 + (b >> 30) % 28:02d},{names[(b >> 35) % 300]},"
               f"{names[(b >> 44) % 300]}-{(b >> 53) % 1000},{qty},{cents / 100:.2f},{qty * cents / 100:.2f},"
               f"{regions[i % 5]}\n")
        rows.append(row)
        size += len(row)
        i += 1
    return "".join(rows)


def csv_bytes(words, rng, n):
    return ("id,date,customer,product,quantity,unit_price,total,region\n" + csv_rows(words, rng, n)).encode()


def md_bytes(words, rng, n):
    parts, size = [], 0
    while size < n:
        part = f"## {words.title(rng, 3)}\n\n" + words.text(rng, rng.randint(300, 2000)) + "\n\n"
        if rng.random() < 0.4:
            part += "".join(f"- {s}\n" for s in words.sentences_for(rng, 300)) + "\n"
        parts.append(part)
        size += len(part)
    return (f"# {words.title(rng, 4)}\n\n" + "".join(parts))[:n].encode()


def make_content(kind, words, rng, size, large):
    if kind == "docx":
        return docx_bytes(words, rng, size)
    if kind == "xlsx":
        return xlsx_bytes(words, rng, size)
    if kind == "pptx":
        return pptx_bytes(words, rng, size, rng.uniform(0.85, 0.97) if large else rng.uniform(0.0, 0.7))
    if kind == "pdf":
        return pdf_bytes(words, rng, size, rng.uniform(0.85, 0.97) if large else rng.uniform(0.1, 0.8))
    if kind == "jpg":
        return jpeg_bytes(rng, size)
    if kind == "png":
        return png_bytes(rng, size)
    if kind == "mp4":
        return mp4_bytes(rng, size)
    if kind == "txt":
        return words.text(rng, size).encode()
    if kind == "md":
        return md_bytes(words, rng, size)
    if kind == "csv":
        return csv_bytes(words, rng, size)
    raise ValueError(kind)


class Portal:
    """The generated portal on disk: its folders (parents first) and files (relative paths)."""

    def __init__(self, root):
        self.root = root
        self.dirs = []  # relative paths, parents before children; rooms are the top-level ones
        self.files = []  # relative paths
        self.sizes = {}
        self.kinds = collections.Counter()
        self.large = 0
        self.duplicates = 0
        self.change_seed = 0
        self.words = None

    @property
    def rooms(self):
        return [d for d in self.dirs if "/" not in d]

    @property
    def total(self):
        return sum(self.sizes.values())

    def path(self, rel):
        return os.path.join(self.root, rel)


def pick(rng, weights):
    kinds = list(weights)
    return rng.choices(kinds, weights=[weights[k] for k in kinds])[0]


def unique_title(words, rng, taken, ext):
    stem = f"{words.title(rng)} {rng.randrange(1, 1000)}"
    title, n = f"{stem}.{ext}", 2
    while title in taken:
        title = f"{stem} ({n}).{ext}"
        n += 1
    taken.add(title)
    return title


def generate_portal(root, gigabytes, seed):
    """Writes the portal under root; deterministic from (gigabytes, seed)."""
    rng = random.Random(seed)
    portal = Portal(root)
    words = portal.words = Words(rng)
    target = int(gigabytes * GiB)
    portal.change_seed = rng.getrandbits(64)

    # Rooms and nested folders.
    n_rooms = max(3, min(24, round(4 + 4 * gigabytes)))
    taken = collections.defaultdict(set)  # dir -> names in it
    for i in range(n_rooms):
        room = f"{i + 1:02d} {words.title(rng, 2)}"
        portal.dirs.append(room)
        level = [room]
        for depth, (lo, hi) in enumerate([(1, 4), (0, 3), (0, 2)]):
            nxt = []
            for parent in level:
                for _ in range(rng.randint(lo, hi)):
                    name = words.title(rng, 2)
                    if name in taken[parent]:
                        continue
                    taken[parent].add(name)
                    nxt.append(f"{parent}/{name}")
            portal.dirs.extend(nxt)
            level = nxt

    # The plan: (relative path, kind, size, large?, seed), then duplicates (relative path, source).
    plan = []
    large_budget = int(target * 0.4) if target >= 64 * MiB else int(target * 0.35)
    used = 0
    while large_budget - used >= 16 * MiB:
        size = min(rng.randint(16 * MiB, 128 * MiB), large_budget - used)
        kind = pick(rng, LARGE_KINDS)
        folder = rng.choice(portal.dirs)
        plan.append((f"{folder}/{unique_title(words, rng, taken[folder], kind)}", kind, size, True,
                     rng.getrandbits(64)))
        used += size
    small_budget = int(target * 0.95)
    while used < small_budget:
        size = int(math.exp(rng.uniform(math.log(4 * KiB), math.log(256 * KiB))))
        kind = pick(rng, SMALL_KINDS)
        folder = rng.choice(portal.dirs)
        plan.append((f"{folder}/{unique_title(words, rng, taken[folder], kind)}", kind, size, False,
                     rng.getrandbits(64)))
        used += size
    small = [p for p in plan if not p[3]]
    dups = []
    for src in rng.sample(small, min(len(small), round(0.05 * len(plan)))):
        src_room = src[0].split("/", 1)[0]
        others = [d for d in portal.dirs if d.split("/", 1)[0] != src_room]
        folder = rng.choice(others)
        name = os.path.basename(src[0])
        if name in taken[folder]:
            name = "Copy of " + name
            if name in taken[folder]:
                continue
        taken[folder].add(name)
        dups.append((f"{folder}/{name}", src[0]))

    # Write it.
    os.makedirs(root)
    for d in portal.dirs:
        os.makedirs(portal.path(d), exist_ok=True)
    for rel, kind, size, large, file_seed in plan:
        data = make_content(kind, words, random.Random(file_seed), size, large)
        with open(portal.path(rel), "wb") as f:
            f.write(data)
        portal.files.append(rel)
        portal.sizes[rel] = len(data)
        portal.kinds[kind] += 1
        portal.large += large
    for rel, src in dups:
        shutil.copyfile(portal.path(src), portal.path(rel))
        portal.files.append(rel)
        portal.sizes[rel] = portal.sizes[src]
        portal.duplicates += 1
        portal.kinds[rel.rsplit(".", 1)[1]] += 1
    return portal


def portal_stats(portal):
    return {"files": len(portal.files), "folders": len(portal.dirs), "rooms": len(portal.rooms),
            "bytes": portal.total, "large_files": portal.large, "duplicates": portal.duplicates,
            "kinds": dict(sorted(portal.kinds.items()))}


def edit_office(path, rng, words, kind):
    """Saves an edited document: one XML part changed in the middle, the container rewritten."""
    with zipfile.ZipFile(path) as z:
        members = [(i.filename, z.read(i), i.compress_type == zipfile.ZIP_DEFLATED) for i in z.infolist()]
    names = [m[0] for m in members]
    part = OFFICE_MAIN[kind]
    if kind == "pptx":
        slides = [n for n in names if n.startswith("ppt/slides/")]
        part = rng.choice(slides) if slides else part
    index = names.index(part)
    xml = members[index][1].decode()
    mid = len(xml) // 2
    if kind == "xlsx":
        region = xml[mid:mid + 4 * KiB]
        region = re.sub(r"<v>\d+\.\d+</v>", lambda m: f"<v>{rng.uniform(0, 5000):.2f}</v>", region)
        xml = xml[:mid] + region + xml[mid + 4 * KiB:]
    else:
        close = "</w:p>" if kind == "docx" else "</a:p>"
        at = xml.find(close, mid)
        at = xml.rfind("</") if at < 0 else at + len(close)
        new = "".join(f"<a:p><a:r><a:t>{s}</a:t></a:r></a:p>" if kind == "pptx" else
                      f'<w:p><w:r><w:t xml:space="preserve">{s}</w:t></w:r></w:p>'
                      for s in words.sentences_for(rng, rng.randint(1 * KiB, 6 * KiB)))
        xml = xml[:at] + new + xml[at:]
    members[index] = (part, xml.encode(), members[index][2])
    data = zip_bytes(members)
    with open(path, "wb") as f:
        f.write(data)


def edit_file(portal, rel, rng):
    """Changes one file the way an editor would: office files are saved anew; others get a few
    KiB rewritten in the middle or appended."""
    path = portal.path(rel)
    kind = rel.rsplit(".", 1)[1]
    if kind in OFFICE_MAIN:
        edit_office(path, rng, portal.words, kind)
    else:
        n = rng.randint(1 * KiB, 8 * KiB)
        size = os.path.getsize(path)
        if kind == "csv":
            new = csv_rows(portal.words, rng, n, start=rng.randrange(10 ** 6)).encode()
        elif kind in TEXT_KINDS:
            new = ("\n\n" + portal.words.text(rng, n)).encode()
        else:
            new = rng.randbytes(n)
        if rng.random() < 0.5 and size > 4 * n:
            at = size // 2 + rng.randint(-size // 8, size // 8)
            with open(path, "r+b") as f:
                f.seek(at)
                f.write(new)
        else:
            with open(path, "ab") as f:
                f.write(new)
    portal.sizes[rel] = os.path.getsize(path)


def change_portal(portal, step):
    """Changes 1% of the files on disk (deterministic from the seed and step); returns them."""
    rng = random.Random(portal.change_seed + step)
    count = max(1, round(len(portal.files) * 0.01))
    chosen = rng.sample(portal.files, count)
    for rel in chosen:
        edit_file(portal, rel, rng)
    return chosen


# --------------------------------------------------------------------------------------------
# The backspace server and its API
# --------------------------------------------------------------------------------------------


class Server:
    """A `backspace serve` process on port 0; stdout is drained by a thread."""

    def __init__(self, binary, workdir):
        self.binary = binary
        self.data_dir = os.path.join(workdir, "server")
        self.roots = os.path.join(workdir, "targets")
        self.log_path = os.path.join(workdir, "logs", "server.stderr")
        self.proc = None
        self.base = None
        self.lines = collections.deque(maxlen=200)

    def start(self, timeout=120):
        os.makedirs(self.roots, exist_ok=True)
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        env = dict(os.environ, BACKSPACE_OWNER_EMAIL=EMAIL, BACKSPACE_OWNER_PASSWORD=PASSWORD,
                   BACKSPACE_LOCAL_BACKUP_ROOTS=self.roots, BACKSPACE_LOG=os.environ.get("BACKSPACE_LOG", "warn"),
                   BACKSPACE_REPOSITORY_PASSPHRASE=PASSPHRASE, BACKSPACE_MAX_UPLOAD_BYTES=str(GiB))
        self.stderr = open(self.log_path, "w")
        try:
            self.proc = subprocess.Popen([self.binary, "serve", "--listen", "127.0.0.1:0",
                                          "--data-dir", self.data_dir],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=self.stderr, text=True, env=env)
        except OSError as e:
            raise BenchError(f"cannot start {self.binary}: {e}") from None
        ready = queue.Queue()

        def drain():
            for line in self.proc.stdout:
                self.lines.append(line.rstrip())
                if "backspace listening on" in line:
                    ready.put(line.strip().split()[-1])
            ready.put(None)

        threading.Thread(target=drain, daemon=True).start()
        try:
            self.base = ready.get(timeout=timeout)
        except queue.Empty:
            self.base = None
        if not self.base:
            raise BenchError(f"backspace did not start (no 'backspace listening on' line):\n"
                             f"{tail(self.stderr_text())}")
        return self.base

    def stderr_text(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def check(self):
        if self.proc.poll() is not None:
            raise BenchError(f"backspace exited with status {self.proc.returncode}:\n{tail(self.stderr_text())}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.stderr.close()


class Api:
    """A DocSpace API client over http.client; re-signs in once on a 401."""

    def __init__(self, base, server):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.server = server
        self.token = None
        self._local = threading.local()

    def sign_in(self):
        r = self.call("POST", "/api/2.0/authentication", {"userName": EMAIL, "password": PASSWORD}, auth=False)
        self.token = r["response"]["token"]

    def _connection(self):
        """This thread's keep-alive connection, and whether it has served a request before."""
        local = self._local
        if getattr(local, "conn", None) is None:
            local.conn, local.used = http.client.HTTPConnection(self.host, self.port, timeout=3600), False
        reused, local.used = local.used, True
        return local.conn, reused

    def _drop(self):
        if getattr(self._local, "conn", None) is not None:
            self._local.conn.close()
            self._local.conn = None

    def _send(self, method, path, *, body=None, headers=None, auth=True, writer=None, sink=None):
        reauthed = retried = False
        while True:
            h = {"Authorization": f"Bearer {self.token}"} if auth else {}
            h.update(headers or {})
            conn, reused = self._connection()
            try:
                if writer:
                    conn.putrequest(method, path)
                    for k, v in h.items():
                        conn.putheader(k, v)
                    conn.endheaders()
                    writer(conn)
                else:
                    conn.request(method, path, body=body, headers=h)
                resp = conn.getresponse()
                if resp.status < 400 and sink:
                    while chunk := resp.read(MiB):
                        sink(chunk)
                    data = b""
                else:
                    data = resp.read()
            except (OSError, http.client.HTTPException) as e:
                self._drop()
                if reused and not retried:
                    retried = True  # the server closed an idle keep-alive connection: once more
                    continue
                self.server.check()
                raise BenchError(f"{method} {path}: {e}") from None
            if resp.will_close:
                self._drop()
            if resp.status == 401 and auth and not reauthed:
                reauthed = True
                self.sign_in()
                continue
            if resp.status >= 400:
                raise BenchError(f"{method} {path}: HTTP {resp.status}: {data[:600].decode(errors='replace')}")
            return data

    def call(self, method, path, body=None, auth=True):
        data = self._send(method, path, auth=auth,
                          body=None if body is None else json.dumps(body).encode(),
                          headers={"Content-Type": "application/json"} if body is not None else None)
        return json.loads(data) if data else {}

    def upload(self, folder_id, title, path):
        """Multipart upload (field `File`), streamed from disk; returns the file's DTO."""
        boundary = "----backspace-bench-" + hashlib.sha1(path.encode()).hexdigest()[:16]
        quoted = title.replace('"', "%22")
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"File\"; filename=\"{quoted}\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n").encode()
        end = f"\r\n--{boundary}--\r\n".encode()
        size = os.path.getsize(path)

        def writer(conn):
            conn.send(head)
            with open(path, "rb") as f:
                while chunk := f.read(MiB):
                    conn.send(chunk)
            conn.send(end)

        data = self._send("POST", f"/api/2.0/files/{folder_id}/upload", writer=writer,
                          headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                                   "Content-Length": str(len(head) + size + len(end))})
        return json.loads(data)["response"][0]

    def download_sha256(self, file_id):
        h = hashlib.sha256()
        self._send("GET", f"/filehandler.ashx?action=download&fileid={file_id}", sink=h.update)
        return h.hexdigest()

    def listing(self, path):
        """Every entry of a paged listing: (folders, files)."""
        folders, files, start = [], [], 0
        while True:
            sep = "&" if "?" in path else "?"
            r = self.call("GET", f"{path}{sep}count=100&startIndex={start}")["response"]
            folders += r.get("folders") or []
            files += r.get("files") or []
            got = len(r.get("folders") or []) + len(r.get("files") or [])
            start += got
            if got == 0 or start >= r.get("total", 0):
                return folders, files

    def wait_job(self, path, task_id, auth=True):
        """Polls a progress endpoint until the job task_id completes; fails loudly on an error."""
        t0 = time.monotonic()
        while True:
            p = self.call("GET", path, auth=auth).get("response")
            if p and p.get("taskId") == task_id and p.get("isCompleted"):
                if p.get("error"):
                    raise BenchError(f"job {task_id} failed: {p['error']}")
                return p
            self.server.check()
            time.sleep(0.02 if time.monotonic() - t0 < 2 else 0.1)


def load_portal(api, portal, workers=4):
    """Creates the rooms and folders and uploads every file; returns {dir: folder id}."""
    folder_ids = {}
    for d in portal.dirs:
        title = os.path.basename(d)
        if "/" not in d:
            r = api.call("POST", "/api/2.0/files/rooms", {"title": title, "roomType": "CustomRoom"})
        else:
            r = api.call("POST", f"/api/2.0/files/folder/{folder_ids[os.path.dirname(d)]}", {"title": title})
        if r["response"]["title"] != title:
            raise BenchError(f"the server renamed folder {title!r} to {r['response']['title']!r}")
        folder_ids[d] = r["response"]["id"]

    def one(rel):
        f = api.upload(folder_ids[os.path.dirname(rel)], os.path.basename(rel), portal.path(rel))
        if f["title"] != os.path.basename(rel):
            raise BenchError(f"the server stored {rel!r} as {f['title']!r}")
        return rel, f["id"]

    file_ids = {}
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for n, (rel, fid) in enumerate(pool.map(one, portal.files), 1):
            file_ids[rel] = fid
            if n % 2000 == 0:
                log(f"  uploaded {n}/{len(portal.files)} files")
    return folder_ids, file_ids


def server_tree(api):
    """The portal as the server lists it: ({dir: id}, {file: (id, size)})."""
    dirs, files = {}, {}
    rooms, _ = api.listing("/api/2.0/files/rooms")
    todo = [(r["title"], r["id"]) for r in rooms]
    while todo:
        rel, fid = todo.pop()
        dirs[rel] = fid
        sub, fs = api.listing(f"/api/2.0/files/{fid}")
        todo += [(f"{rel}/{f['title']}", f["id"]) for f in sub]
        for f in fs:
            files[f"{rel}/{f['title']}"] = (f["id"], f.get("pureContentLength"))
    return dirs, files


# --------------------------------------------------------------------------------------------
# The tools
# --------------------------------------------------------------------------------------------


class Tool:
    """One backup tool: its own target directory; backups numbered by step (1-based)."""

    name = "?"

    def __init__(self, workdir, portal):
        self.workdir, self.portal = workdir, portal
        self.target = os.path.join(workdir, "targets" if self.name == "backspace" else "peers", self.slug)
        self.backups = []  # {"step", "ref", "time_s", "peak_kib", "storage"}
        self.stopped = None  # why the series stopped early, if it did

    @property
    def slug(self):
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")

    def setup(self):
        os.makedirs(self.target, exist_ok=True)

    def storage(self):
        return du_bytes(self.target)

    def restore_source(self):
        """The files a restore of the latest backup reads (warmed before it is timed)."""
        return [self.target]

    def version(self):
        return ""

    def backup(self, step):
        """Returns (seconds, peak KiB, reference)."""
        raise NotImplementedError

    def restore(self, dest):
        """Restores the latest backup under dest; returns (seconds, peak KiB, restored root)."""
        raise NotImplementedError

    def delete(self, record):
        """Deletes one backup; returns (seconds, peak KiB)."""
        raise NotImplementedError


class Backspace(Tool):
    name = "backspace"

    def __init__(self, workdir, portal, server, api):
        super().__init__(workdir, portal)
        self.server, self.api = server, api
        self.last_start = 0
        self.hwm = []

    def version(self):
        return run([self.server.binary, "--version"]).stdout.strip()

    def history_ids(self):
        return [r["id"] for r in self.api.call("GET", "/api/2.0/backup/getbackuphistory").get("response") or []]

    def backup(self, step):
        # Plain archives are named to the second: two backups in one second would share a name.
        while int(time.time()) <= self.last_start:
            time.sleep(0.05)
        self.last_start = int(time.time())
        before = set(self.history_ids())
        hwm0 = status_kib(self.server.proc.pid, "VmHWM")
        with PeakSampler(self.server.proc.pid) as s:
            t0 = time.monotonic()
            r = self.api.call("POST", "/api/2.0/backup/startbackup",
                              {"storageType": 3, "storageParams": [{"key": "filePath", "value": self.target}]})
            task = r["response"]["taskId"]
            self.api.wait_job("/api/2.0/backup/getbackupprogress", task)
            took = time.monotonic() - t0
        self.hwm.append({"step": step, "before_kib": hwm0, "after_kib": status_kib(self.server.proc.pid, "VmHWM"),
                         "rss_at_start_kib": s.start_kib, "rss_peak_kib": s.peak_kib})
        log(f"  backspace  RSS at the start of backup {step}: {s.start_kib / 1024:.1f} MiB")
        new = [i for i in self.history_ids() if i not in before]
        if not new:
            raise BenchError(f"backup {step} ({task}) completed but the history lists no new backup")
        ref = task if task in new else new[0]
        return took, s.peak_kib, ref

    def restore(self, dest):
        ref = self.backups[-1]["ref"]
        with PeakSampler(self.server.proc.pid) as s:
            t0 = time.monotonic()
            r = self.api.call("POST", "/api/2.0/backup/startrestore", {"backupId": ref})
            # getrestoreprogress is anonymous: the portal is locked while the restore runs.
            self.api.wait_job("/api/2.0/backup/getrestoreprogress", r["response"]["taskId"], auth=False)
            took = time.monotonic() - t0
        log(f"  backspace  RSS at the start of the restore: {s.start_kib / 1024:.1f} MiB")
        return took, s.peak_kib, None

    def delete(self, record):
        with PeakSampler(self.server.proc.pid) as s:
            t0 = time.monotonic()
            self.api.call("DELETE", f"/api/2.0/backup/deletebackup/{record['ref']}")
            took = time.monotonic() - t0
        return took, s.peak_kib


class Tar(Tool):
    def __init__(self, workdir, portal, name, ext, create, extract, all_archives):
        self.name = name
        super().__init__(workdir, portal)
        self.ext, self.create, self.extract = ext, create, extract
        self.all_archives = all_archives
        self.sizes = {}

    def version(self):
        tar = run(["tar", "--version"]).stdout.splitlines()[0]
        comp = run(["gzip", "--version"]).stdout.splitlines()[0] if self.ext == "tar.gz" else \
            run(["zstd", "--version"]).stdout.strip(" *\n")
        return f"{tar}; {comp}"

    def archive(self, step):
        return os.path.join(self.target, f"backup-{step:03d}.{self.ext}")

    def backup(self, step):
        path = self.archive(step)
        took, peak, _, _ = run_measured(["tar", "-C", self.portal.root] + self.create + [path, "."],
                                        self.workdir, what=f"{self.name} backup {step}")
        self.sizes[step] = os.path.getsize(path)
        return took, peak, path

    def restore_source(self):
        return [self.backups[-1]["ref"]]

    def restore(self, dest):
        path = self.backups[-1]["ref"]
        took, peak, _, _ = run_measured(["tar", "-C", dest] + self.extract + [path], self.workdir,
                                        what=f"{self.name} restore")
        return took, peak, dest

    def delete(self, record):
        t0 = time.monotonic()
        os.remove(record["ref"])
        return time.monotonic() - t0, None  # no process to measure


class Restic(Tool):
    name = "restic"

    def env(self):
        return dict(os.environ, RESTIC_REPOSITORY=self.target, RESTIC_PASSWORD=PASSPHRASE,
                    RESTIC_CACHE_DIR=os.path.join(self.workdir, "peers", "restic-cache"))

    def version(self):
        return run(["restic", "version"]).stdout.strip()

    def setup(self):
        run(["restic", "init"], env=self.env(), what="restic init")

    def backup(self, step):
        took, peak, out, _ = run_measured(["restic", "backup", "--json", "--host", "bench", self.portal.root],
                                          self.workdir, env=self.env(), what=f"restic backup {step}")
        for line in reversed(out.splitlines()):
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("message_type") == "summary":
                return took, peak, msg["snapshot_id"]
        raise BenchError(f"restic backup {step}: no summary with a snapshot id in its output:\n{tail(out)}")

    def restore(self, dest):
        took, peak, _, _ = run_measured(["restic", "restore", self.backups[-1]["ref"], "--target", dest],
                                        self.workdir, env=self.env(), what="restic restore")
        return took, peak, os.path.join(dest, self.portal.root.lstrip("/"))

    def delete(self, record):
        took, peak, _, _ = run_measured(["restic", "forget", record["ref"], "--prune"],
                                        self.workdir, env=self.env(), what="restic forget --prune")
        return took, peak


class Borg(Tool):
    name = "borg"

    def env(self):
        return dict(os.environ, BORG_PASSPHRASE=PASSPHRASE, BORG_DISPLAY_PASSPHRASE="no",
                    BORG_BASE_DIR=os.path.join(self.workdir, "peers", "borg-base"),
                    BORG_RELOCATED_REPO_ACCESS_IS_OK="yes")

    def version(self):
        return run(["borg", "--version"]).stdout.strip()

    def setup(self):
        os.makedirs(os.path.dirname(self.target), exist_ok=True)
        run(["borg", "init", "-e", "repokey", self.target], env=self.env(), what="borg init")

    def backup(self, step):
        ref = f"{self.target}::b{step:03d}"
        # Exit status 1 is borg's "warning" (e.g. a file changed while read): kept, logged.
        took, peak, _, _ = run_measured(["borg", "create", ref, "."], self.workdir, env=self.env(),
                                        cwd=self.portal.root, ok=(0, 1), what=f"borg create {step}")
        return took, peak, ref

    def restore(self, dest):
        took, peak, _, _ = run_measured(["borg", "extract", self.backups[-1]["ref"]], self.workdir,
                                        env=self.env(), cwd=dest, ok=(0, 1), what="borg extract")
        return took, peak, dest

    def delete(self, record):
        t1, p1, _, _ = run_measured(["borg", "delete", record["ref"]], self.workdir, env=self.env(),
                                    ok=(0, 1), what="borg delete")
        t2, p2, _, _ = run_measured(["borg", "compact", self.target], self.workdir, env=self.env(),
                                    ok=(0, 1), what="borg compact")
        return t1 + t2, max(p1, p2)


def ensure_peer_programs():
    """Installs restic, borg, GNU time and zstd with apt-get when missing; checks borg is 1.2."""
    need = {"restic": "restic", "borg": "borgbackup", GNU_TIME: "time", "zstd": "zstd", "tar": "tar",
            "gzip": "gzip"}
    missing = sorted({pkg for prog, pkg in need.items() if not shutil.which(prog)})
    if missing:
        log(f"installing {' '.join(missing)} with apt-get")
        cmd = ["apt-get", "install", "-y"] + missing
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        if subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True).returncode != 0:
            run(["apt-get", "update"], env=env, what="apt-get update")
            run(cmd, env=env, what="apt-get install " + " ".join(missing))
    version = run(["borg", "--version"]).stdout.strip()
    if not re.search(r"\b1\.2\.", version):
        log(f"warning: the benchmark names borg 1.2; this is {version}")


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def measure_dd(workdir):
    """Sequential write speed of the work directory's disk, bytes per second."""
    path = os.path.join(workdir, "dd.bin")
    count = 1024 if free_bytes(workdir) > 3 * GiB else 256
    t0 = time.monotonic()
    p = run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={count}", "conv=fdatasync"],
            env=dict(os.environ, LC_ALL="C"), what="dd")
    took = time.monotonic() - t0
    os.remove(path)
    m = re.search(r"(\d+) bytes .* copied, ([\d.]+) s", p.stderr)
    if m and float(m.group(2)) > 0:
        return int(m.group(1)) / float(m.group(2)), p.stderr.strip().splitlines()[-1]
    return count * MiB / took, f"{count} MiB in {took:.2f} s (timed by the benchmark)"


def check_disk(workdir, need, what):
    free = free_bytes(workdir)
    if free < need:
        raise DiskFull(f"{what}: needs about {need / GiB:.1f} GiB free in {workdir}, "
                         f"{free / GiB:.1f} GiB left")


def warm(paths):
    """Reads every file under `paths` once (outside any timing), so that a restore starts from
    a backup in the page cache, as every tool's does: the tools back up one after another and
    their later writes evict the earlier ones' data, so without this the first tool (backspace)
    would restore from the disk and the last from memory."""
    for root in paths:
        files = [root] if os.path.isfile(root) else \
            [os.path.join(d, f) for d, _, names in os.walk(root) for f in names]
        for path in files:
            try:
                with open(path, "rb") as f:
                    while f.read(MiB):
                        pass
            except OSError:
                pass


def settle():
    """Writes back what earlier steps left in the page cache, outside any timing: otherwise one
    tool's unsynced output (tar's archives) would be flushed during the next tool's operation,
    and a tool that syncs its own writes (backspace syncs its file system) would pay for it."""
    os.sync()


def do_backup(tool, step, portal_bytes):
    """One backup of a tool; records time, peak memory and storage after it."""
    check_disk(tool.workdir, int(portal_bytes * 1.05) + 512 * MiB, f"{tool.name} backup {step}")
    settle()
    took, peak, ref = tool.backup(step)
    record = {"step": step, "ref": ref, "time_s": took, "peak_kib": peak, "storage": tool.storage()}
    tool.backups.append(record)
    log(f"  {tool.name:<10} backup {step:>2}: {took:7.2f} s, {portal_bytes / took / MiB:8.1f} MiB/s, "
        f"storage {record['storage'] / MiB:9.1f} MiB, peak {peak / 1024:7.1f} MiB")
    return record


def apply_change(portal, step, api, folder_ids, file_ids):
    changed = change_portal(portal, step)
    if api is None:
        return changed, 0.0
    t0 = time.monotonic()
    for rel in changed:
        f = api.upload(folder_ids[os.path.dirname(rel)], os.path.basename(rel), portal.path(rel))
        if f["title"] != os.path.basename(rel):
            raise BenchError(f"re-uploading {rel!r} created {f['title']!r}: the server did not replace "
                             "the same-titled file")
        if rel in file_ids and f["id"] != file_ids[rel]:
            log(f"  note: re-uploading {rel!r} gave a new file id ({file_ids[rel]} -> {f['id']})")
        file_ids[rel] = f["id"]
    return changed, time.monotonic() - t0


def verify_backspace(api, portal, changed):
    """Compares the server's tree with the files on disk (sizes), and the bytes of changed files."""
    dirs, files = server_tree(api)
    problems = []
    if set(dirs) != set(portal.dirs):
        problems.append(f"folders differ: {sorted(set(dirs) ^ set(portal.dirs))[:5]}")
    if set(files) != set(portal.files):
        problems.append(f"files differ: {sorted(set(files) ^ set(portal.files))[:5]}")
    wrong = [rel for rel in portal.files if rel in files and files[rel][1] is not None
             and files[rel][1] != portal.sizes[rel]]
    if wrong:
        problems.append(f"{len(wrong)} files have the wrong size, e.g. {wrong[:3]}")
    for rel in changed:
        if rel in files and api.download_sha256(files[rel][0]) != file_sha256(portal.path(rel)):
            problems.append(f"the bytes of {rel!r} differ")
    return dirs, {rel: v[0] for rel, v in files.items()}, problems


def wait_reclaim(tool, before, limit=RECLAIM_WAIT_S):
    """Polls the tool's storage every second until it drops and settles, up to limit seconds.

    Returns (seconds until the first drop or None, storage at the end)."""
    t0 = time.monotonic()
    first_drop, last = None, tool.storage()
    if last < before:
        first_drop = 0.0
    while time.monotonic() - t0 < limit:
        if first_drop is not None:
            time.sleep(1)
            now = tool.storage()
            if now == last:
                return first_drop, now
            last = now
            continue
        time.sleep(1)
        last = tool.storage()
        if last < before:
            first_drop = time.monotonic() - t0
    return first_drop, last


def summarize(tool, portal_bytes, restore, delete, dd_bps, n_backups, tar_estimated):
    b = tool.backups

    def backup_row(i, prev_storage):
        r = b[i]
        return {"time_s": r["time_s"], "throughput_mib_s": portal_bytes / r["time_s"] / MiB,
                "storage_mib": r["storage"] / MiB, "added_mib": (r["storage"] - prev_storage) / MiB,
                "peak_mib": r["peak_kib"] / 1024}

    out = {"version": tool.version(), "backups": [{k: v for k, v in r.items() if k != "ref"} for r in b]}
    if len(b) >= 1:
        out["first"] = backup_row(0, 0)
    if len(b) >= 2:
        out["unchanged"] = backup_row(1, b[0]["storage"])
    if len(b) >= 3:
        out["changed"] = backup_row(2, b[1]["storage"])
    if restore:
        out["restore"] = dict(restore, throughput_mib_s=portal_bytes / restore["time_s"] / MiB,
                              of_dd_pct=100 * portal_bytes / restore["time_s"] / dd_bps)
    if b:
        if isinstance(tool, Tar):
            sizes = [tool.sizes[r["step"]] for r in b]
            sizes += [sizes[-1]] * (n_backups - len(sizes)) if tar_estimated else []
            series_storage, how = sum(sizes), ("sum of archive sizes" + (
                f" ({len(b)} written, the rest each the size of the latest)" if tar_estimated else ""))
            count = len(sizes)
        else:
            series_storage, how, count = b[-1]["storage"], "du of the target after the last backup", len(b)
        inc = [r["time_s"] for r in b[3:]]
        out["series"] = {"backups": count, "storage_mib": series_storage / MiB, "how": how,
                         "ratio_to_first": series_storage / b[0]["storage"] if b[0]["storage"] else None,
                         "mean_time_s_after_3": sum(inc) / len(inc) if inc else None,
                         "stopped_early": tool.stopped}
    if delete:
        out["delete"] = delete
    return out


def fmt(v, digits=1):
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    return f"{v:,.{digits}f}"


def markdown(results, names, n_backups, stats):
    def get(tool, *path):
        v = results.get(tool)
        for p in path:
            v = v.get(p) if isinstance(v, dict) else None
        return v

    rows = [
        ("first backup", "time (s)", ("first", "time_s"), 2),
        ("", "throughput (MiB/s)", ("first", "throughput_mib_s"), 1),
        ("", "storage (MiB)", ("first", "storage_mib"), 1),
        ("", "peak memory (MiB)", ("first", "peak_mib"), 1),
        ("unchanged backup", "time (s)", ("unchanged", "time_s"), 2),
        ("", "throughput (MiB/s)", ("unchanged", "throughput_mib_s"), 1),
        ("", "storage added (MiB)", ("unchanged", "added_mib"), 1),
        ("", "peak memory (MiB)", ("unchanged", "peak_mib"), 1),
        ("1% changed backup", "time (s)", ("changed", "time_s"), 2),
        ("", "throughput (MiB/s)", ("changed", "throughput_mib_s"), 1),
        ("", "storage added (MiB)", ("changed", "added_mib"), 1),
        ("", "peak memory (MiB)", ("changed", "peak_mib"), 1),
        ("restore latest", "time (s)", ("restore", "time_s"), 2),
        ("", "throughput (MiB/s)", ("restore", "throughput_mib_s"), 1),
        ("", "% of dd write speed", ("restore", "of_dd_pct"), 0),
        ("", "peak memory (MiB)", ("restore", "peak_mib"), 1),
        (f"{n_backups} backups", "storage (MiB)", ("series", "storage_mib"), 1),
        ("", "× one backup", ("series", "ratio_to_first"), 2),
        ("", "mean time of backups 4+ (s)", ("series", "mean_time_s_after_3"), 2),
        (f"delete 1 of {n_backups}", "time (s)", ("delete", "time_s"), 2),
        ("", "storage reclaimed (MiB)", ("delete", "reclaimed_mib"), 1),
        ("", "reclaimed after (s)", ("delete", "reclaim_s"), 0),
        ("", "peak memory (MiB)", ("delete", "peak_mib"), 1),
    ]
    lines = [f"Portal: {stats['files']} files ({stats['large_files']} large, {stats['duplicates']} duplicates) "
             f"in {stats['folders']} folders, {stats['bytes'] / GiB:.2f} GiB; 1% = "
             f"{max(1, round(stats['files'] * 0.01))} files changed between backups.", "",
             "| operation | metric | " + " | ".join(names) + " |",
             "|---|---|" + "---:|" * len(names)]
    for op, metric, path, digits in rows:
        lines.append(f"| {op} | {metric} | " + " | ".join(fmt(get(n, *path), digits) for n in names) + " |")
    return "\n".join(lines)


def ratios(results, dd_bps):
    def g(tool, *path):
        v = results.get(tool)
        for p in path:
            v = v.get(p) if isinstance(v, dict) else None
        return v

    def div(a, b):
        return a / b if a is not None and b else None

    def pct(a, b):
        return None if a is None or not b else 100 * a / b

    bs = "backspace"
    out = {
        "first_backup_throughput_vs_restic": div(g(bs, "first", "throughput_mib_s"), g("restic", "first", "throughput_mib_s")),
        "first_backup_throughput_vs_tar_czf": div(g(bs, "first", "throughput_mib_s"), g("tar czf", "first", "throughput_mib_s")),
        "unchanged_backup_time_pct_of_first": pct(g(bs, "unchanged", "time_s"), g(bs, "first", "time_s")),
        "unchanged_backup_speedup_vs_restic": div(g("restic", "unchanged", "time_s"), g(bs, "unchanged", "time_s")),
        "changed_backup_time_pct_of_first": pct(g(bs, "changed", "time_s"), g(bs, "first", "time_s")),
        "changed_backup_speedup_vs_restic": div(g("restic", "changed", "time_s"), g(bs, "changed", "time_s")),
        "series_storage_over_one_backup": g(bs, "series", "ratio_to_first"),
        "restore_throughput_vs_restic": div(g(bs, "restore", "throughput_mib_s"), g("restic", "restore", "throughput_mib_s")),
        "restore_throughput_pct_of_dd": g(bs, "restore", "of_dd_pct"),
        "peak_memory_mib_backup": max((r["peak_kib"] for r in (results.get(bs) or {}).get("backups", [])), default=0) / 1024 or None,
        "peak_memory_mib_restore": g(bs, "restore", "peak_mib"),
        "peak_memory_mib_delete": g(bs, "delete", "peak_mib"),
        "dd_write_mib_s": dd_bps / MiB,
    }
    n = g(bs, "series", "backups")
    text = [
        f"- backspace first-backup throughput: {fmt(out['first_backup_throughput_vs_restic'], 2)}× restic's, "
        f"{fmt(out['first_backup_throughput_vs_tar_czf'], 2)}× tar czf's",
        f"- unchanged backup: time {fmt(out['unchanged_backup_time_pct_of_first'])}% of backspace's first "
        f"backup; speedup vs restic (restic's time / backspace's) {fmt(out['unchanged_backup_speedup_vs_restic'], 2)}×",
        f"- 1% changed backup: time {fmt(out['changed_backup_time_pct_of_first'])}% of backspace's first "
        f"backup; speedup vs restic {fmt(out['changed_backup_speedup_vs_restic'], 2)}×",
        f"- storage of {n} backups: {fmt(out['series_storage_over_one_backup'], 2)}× one backup",
        f"- restore throughput: {fmt(out['restore_throughput_vs_restic'], 2)}× restic's, "
        f"{fmt(out['restore_throughput_pct_of_dd'], 0)}% of dd's sequential write ({out['dd_write_mib_s']:.0f} MiB/s)",
        f"- backspace peak memory: backup {fmt(out['peak_memory_mib_backup'])} MiB (max over all backups), "
        f"restore {fmt(out['peak_memory_mib_restore'])} MiB, delete {fmt(out['peak_memory_mib_delete'])} MiB",
    ]
    return out, "\n".join(text)


def prepare_workdir(path):
    if path is None:
        os.makedirs("/var/tmp", exist_ok=True)
        return tempfile.mkdtemp(prefix="backspace-bench-repo-", dir="/var/tmp")
    path = os.path.abspath(path)
    if os.path.exists(path) and os.listdir(path):
        raise BenchError(f"--workdir {path} is not empty (it is removed at the end: give a new or empty one)")
    os.makedirs(path, exist_ok=True)
    return path


def resolve_binary(binary):
    if os.path.isabs(binary) or os.path.exists(binary):
        path = os.path.abspath(binary)
    else:
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), binary)
    if not os.access(path, os.X_OK):
        raise BenchError(f"no backspace binary at {path}: build it first (cargo build --release) or pass --binary")
    return path


def parse_args():
    ap = argparse.ArgumentParser(description="Incremental backup benchmark: backspace vs tar, restic, borg.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("usage:")[1])
    ap.add_argument("--gigabytes", type=float, default=2.0, help="portal size in GiB (default 2)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the generated data and changes (default 1)")
    ap.add_argument("--binary", default="target/release/backspace", help="the backspace binary")
    ap.add_argument("--workdir", help="where everything is written (default: a new dir under /var/tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--backups", type=int, default=30, help="backups in the series (default 30)")
    ap.add_argument("--skip-peers", action="store_true", help="run backspace only")
    ap.add_argument("--tar-series", action="store_true",
                    help="write every tar archive of the series (default: the first three, the rest computed)")
    ap.add_argument("--json", help="results file (default: WORKDIR/../bench-repo-results.json)")
    ap.add_argument("--generate-only", action="store_true",
                    help="generate the portal, print its statistics and tree SHA-256, and stop")
    args = ap.parse_args()
    if args.backups < 3:
        ap.error("--backups must be at least 3")
    if args.gigabytes <= 0:
        ap.error("--gigabytes must be positive")
    return args


def main():
    args = parse_args()
    try:
        workdir = prepare_workdir(args.workdir)
    except BenchError as e:
        print(f"bench_repo: error: {e}", file=sys.stderr)
        return 2
    json_path = args.json or os.path.join(os.path.dirname(workdir), "bench-repo-results.json")
    server = None
    try:
        log(f"work directory {workdir}")
        if not args.generate_only:
            binary = resolve_binary(args.binary)
            if not args.skip_peers:
                ensure_peer_programs()
            need = int(args.gigabytes * GiB * (11 if not args.skip_peers else 5)) + 2 * GiB
            check_disk(workdir, need, "the benchmark")

        t0 = time.monotonic()
        portal = generate_portal(os.path.join(workdir, "portal"), args.gigabytes, args.seed)
        stats = portal_stats(portal)
        log(f"generated {stats['files']} files ({stats['large_files']} large, {stats['duplicates']} duplicates) "
            f"in {stats['folders']} folders ({stats['rooms']} rooms), {stats['bytes'] / GiB:.3f} GiB "
            f"in {time.monotonic() - t0:.1f} s")
        if args.generate_only:
            stats["tree_sha256"] = tree_digest(portal.root)
            print(json.dumps(stats, indent=2))
            return 0

        dd_bps, dd_line = measure_dd(workdir)
        log(f"dd sequential write: {dd_bps / MiB:.0f} MiB/s ({dd_line})")

        server = Server(binary, workdir)
        base = server.start()
        api = Api(base, server)
        api.sign_in()
        log(f"backspace at {base}; loading the portal")
        t0 = time.monotonic()
        folder_ids, file_ids = load_portal(api, portal)
        load_s = time.monotonic() - t0
        log(f"uploaded {len(file_ids)} files in {load_s:.1f} s ({portal.total / load_s / MiB:.0f} MiB/s)")

        tools = [Backspace(workdir, portal, server, api)]
        if not args.skip_peers:
            tools += [Tar(workdir, portal, "tar czf", "tar.gz", ["-czf"], ["-xzf"], args.tar_series),
                      Tar(workdir, portal, "tar zstd", "tar.zst", ["-I", "zstd -3 -T0", "-cf"],
                          ["-I", "zstd -d -T0", "-xf"], args.tar_series),
                      Restic(workdir, portal), Borg(workdir, portal)]
        versions = {}
        for tool in tools:
            tool.setup()
            versions[tool.name] = tool.version()
            log(f"{tool.name}: {versions[tool.name]}")

        changes = []
        restore_results, delete_results = {}, {}
        for step in range(1, args.backups + 1):
            if step >= 3:
                changed, upload_s = apply_change(portal, step, api, folder_ids, file_ids)
                changes.append({"step": step, "files": len(changed), "bytes": sum(portal.sizes[r] for r in changed),
                                "reupload_s": upload_s})
                log(f"step {step}: changed {len(changed)} files on disk and on the server")
            else:
                log(f"step {step}: {'first backup' if step == 1 else 'nothing changed'}")
            for tool in tools:
                if tool.stopped:
                    continue
                if isinstance(tool, Tar) and step > 3 and not tool.all_archives:
                    continue
                try:
                    do_backup(tool, step, portal.total)
                except DiskFull as e:
                    if step <= 3:
                        raise
                    tool.stopped = f"stopped at {len(tool.backups)} backups: {e}"
                    log(f"  {tool.name}: {tool.stopped}")
                    continue
                if isinstance(tool, Tar) and step > 4:
                    # Keep disk use flat: the series' storage is the sum of the sizes.
                    prev = tool.backups[-2]
                    if prev["step"] != (args.backups + 1) // 2 and os.path.exists(prev["ref"]):
                        os.remove(prev["ref"])

            if step == 3:
                log("restoring the latest backup")
                last_changed = changed
                expected = tree_digest(portal.root) if len(tools) > 1 else None
                for tool in tools:
                    dest = os.path.join(workdir, "restore", tool.slug)
                    os.makedirs(dest)
                    check_disk(workdir, int(portal.total * 1.1) + 512 * MiB, f"{tool.name} restore")
                    warm(tool.restore_source())
                    settle()
                    took, peak, root = tool.restore(dest)
                    # A restore is done when its files are on disk, as dd's bar (conv=fdatasync)
                    # and backspace (which syncs before it reports the end) count it; the peers
                    # leave their files in the page cache, so their time includes a sync.
                    unsynced = took
                    if not isinstance(tool, Backspace):
                        t_sync = time.monotonic()
                        os.sync()
                        took += time.monotonic() - t_sync
                    if isinstance(tool, Backspace):
                        folder_ids, file_ids, problems = verify_backspace(api, portal, last_changed)
                    else:
                        problems = [] if tree_digest(root) == expected else \
                            [f"the restored tree under {root} differs from the portal"]
                    shutil.rmtree(os.path.join(workdir, "restore"))
                    if problems:
                        raise BenchError(f"{tool.name} restore is wrong: " + "; ".join(problems))
                    restore_results[tool.name] = {"time_s": took, "unsynced_s": unsynced, "peak_mib": peak / 1024,
                                                  "verified": True}
                    log(f"  {tool.name:<10} restore: {took:7.2f} s ({unsynced:.2f} s before the sync), "
                        f"{portal.total / took / MiB:8.1f} MiB/s, peak {peak / 1024:7.1f} MiB (verified)")

        log("deleting the middle backup")
        for tool in tools:
            if isinstance(tool, Tar):
                # Only some archives are still on disk (the series' storage is a sum of sizes):
                # the middle one with --tar-series, else backup 2.
                kept = [r for r in tool.backups if os.path.exists(r["ref"])]
                middle = (args.backups + 1) // 2 if tool.all_archives else 2
                record = next((r for r in kept if r["step"] == middle), kept[len(kept) // 2])
            else:
                record = tool.backups[(len(tool.backups) + 1) // 2 - 1]
            before = tool.storage()
            settle()
            took, peak = tool.delete(record)
            if isinstance(tool, Backspace):
                # The server may reclaim space later (a repository's garbage collection).
                with PeakSampler(server.proc.pid) as s:
                    first_drop, after = wait_reclaim(tool, before)
                peak = max(peak, s.peak_kib)
                if first_drop is None:
                    log(f"  backspace: no space reclaimed within {RECLAIM_WAIT_S} s")
            else:
                # The peers' commands return when the space is free (or never will be).
                after = tool.storage()
                first_drop = 0.0 if after < before else None
            delete_results[tool.name] = {"step": record["step"], "time_s": took,
                                         "peak_mib": None if peak is None else peak / 1024,
                                         "reclaimed_mib": (before - after) / MiB, "reclaim_s": first_drop,
                                         "reclaimed_within_s": RECLAIM_WAIT_S}
            log(f"  {tool.name:<10} delete backup {record['step']}: {took:7.2f} s, reclaimed "
                f"{(before - after) / MiB:.1f} MiB after {fmt(first_drop, 0)} s")

        results = {t.name: summarize(t, portal.total, restore_results.get(t.name), delete_results.get(t.name),
                                     dd_bps, args.backups, isinstance(t, Tar) and not t.all_archives)
                   for t in tools}
        if isinstance(tools[0], Backspace):
            results["backspace"]["vmhwm_kib"] = tools[0].hwm
        names = [t.name for t in tools]
        table = markdown(results, names, args.backups, stats)
        ratio_values, ratio_text = ratios(results, dd_bps)
        notes = [f"- dd sequential write: {dd_bps / MiB:.0f} MiB/s; seed {args.seed}; "
                 f"{os.cpu_count()} cores; throughput is portal bytes / time for every backup and restore",
                 "- peak memory: backspace = the server's RSS sampled every 50 ms during the operation; "
                 "peers = max(GNU time's max RSS, the sampled RSS of the process tree)",
                 "- defaults: restic (repository v2, auto compression; prune keeps up to 5% unused space), "
                 "borg (repokey, lz4; delete + compact), tar czf (gzip -6), tar zstd (zstd -3 -T0)",
                 "- the page cache is not dropped between tools: every tool reads warm data (a restore's "
                 "source is read once before it is timed); dirty pages are written back (sync) before each "
                 "timed operation"]
        for t in tools:
            if isinstance(t, Tar) and not t.all_archives:
                notes.append(f"- {t.name}: {args.backups}-backup storage is computed (3 archives written, "
                             "the rest each the size of the latest; --tar-series writes them); "
                             "its delete removes the archive of backup 2")
            if t.stopped:
                notes.append(f"- {t.name}: series {t.stopped}")
        notes += [f"- {k}: {v}" for k, v in versions.items()]
        report = f"{table}\n\n{ratio_text}\n\n" + "\n".join(notes)
        print(report)
        with open(json_path, "w") as f:
            json.dump({"config": vars(args), "workdir": workdir, "portal": stats, "upload_s": load_s,
                       "dd": {"bytes_per_s": dd_bps, "line": dd_line}, "versions": versions,
                       "changes": changes, "tools": results, "ratios": ratio_values,
                       "table_markdown": report}, f, indent=2)
        log(f"results written to {json_path}")
        return 0
    except BenchError as e:
        print(f"bench_repo: error: {e}", file=sys.stderr)
        return 1
    finally:
        if server:
            server.stop()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
