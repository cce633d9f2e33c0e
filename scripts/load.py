#!/usr/bin/env python3
"""The concurrency load (a command, not a test): many clients polling and downloading while
backups and restores run, for a fixed time; prints throughput, latency percentiles and error
counts per kind of request (paste the table into the README). No request may fail.

What it does:

1. Starts backspace on a fresh data directory (as scripts/bench_repo.py does: `Local` backups
   allowed under WORKDIR/targets, a repository passphrase set, so `Local` and `DataStore`
   backups go into deduplicating repositories shared by the portals), with registration open.
2. Sets up --portals portals: the default one and registered ones (named by `Origin`), each
   with rooms, folders and about --megabytes of files generated from --seed (text and random
   bytes, 4 KiB to 8 MiB), a `Changes` folder for the backup loop, and a backup schedule (set
   half a day ahead, so it never fires during the run).
3. For --seconds, at once:
   - per portal, a job loop: change a file in `Changes`, start a backup (alternately to its own
     `Local` directory and to `DataStore`), wait for it; every --restore-every backups, restore
     one of the portal's earlier backups at random (the portal is locked meanwhile), waiting on
     the anonymous restore progress; beyond --keep backups, delete the oldest (which starts a
     garbage collection of the shared repository);
   - --clients client threads, each with one persistent HTTP/1.1 connection to one portal,
     sending without pause: getbackupprogress, getrestoreprogress (anonymous),
     getbackuphistory, getbackupschedule, folder listings, file downloads (filehandler.ashx)
     and backup downloads (the `link` of a history record; --downloads at a time over all
     clients, since each reads a whole portal).
4. Prints, per kind of request: count, requests per second, latency percentiles (to the last
   byte of the body) and answers by class; exits 1 if any request failed or any job failed.

Every answer is checked, not only its status: a progress must show a job of this portal
(never another portal's task id or tenantId), a history must list only this portal's backups
(by id and file name), the schedule must be the one set, a listing must hold exactly the
folder's files, a downloaded file must have its SHA-256, and a downloaded backup must be a
whole zstd stream (http.client fails a body shorter than its Content-Length or a chunked body
without its end). A check that fails counts as `wrong`.

Expected answers (counted, not failures): while a restore runs, the portal answers every request
but getrestoreprogress with 403 and `The portal is being restored` (BACKUP_API.md §6.10,
crates/server/src/access.rs) - `locked`; a backup the job loop deleted is 404 to a client that
listed it just before, and a download of it under way may break off - `deleted` (only for ids
the loop had deleted when the answer came). Anything else that is not 2xx is a failure: 4xx,
5xx (counted apart) and connection errors (no retries: each is counted).

usage:
  scripts/load.py [--binary target/release/backspace] [--seconds 60] [--clients 32]
                  [--portals 2] [--megabytes 64] [--seed 1] [--keep 4] [--restore-every 3]
                  [--downloads 2] [--json PATH] [--workdir DIR] [--keep-workdir]

  scripts/load.py --seconds 10 --clients 8 --megabytes 8 --binary target/debug/backspace
      a quick check against a debug build

Needs only the Python standard library. Build first: cargo build --release
"""
import argparse
import collections
import hashlib
import http.client
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in scripts/ from the import below
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_repo import (  # noqa: E402  (the same server handling as the benchmark)
    EMAIL, PASSWORD, KiB, MiB, BenchError, PeakSampler, Server, log, resolve_binary, tail)

PORTAL_PASSWORD = "Load-Pass-123"
LOCKED = "The portal is being restored"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# Client actions and their weights (out of 100).
ACTIONS = [("getbackupprogress", 20), ("getrestoreprogress", 15), ("getbackuphistory", 15),
           ("getbackupschedule", 10), ("listing", 16), ("file download", 20), ("backup download", 4)]
# At most this many files per folder, so that a listing is one page (the API's largest).
FOLDER_FILES = 90
KIND_ORDER = [a for a, _ in ACTIONS] + ["startbackup", "startrestore", "deletebackup", "upload"]


class LoadError(BenchError):
    """A failure of the setup, meant for the person running the load."""


# --------------------------------------------------------------------------------------------
# HTTP: one persistent connection per thread, every request timed and classified
# --------------------------------------------------------------------------------------------


class Stats:
    """One thread's counts and latencies per kind of request; merged at the end."""

    CLASSES = ("ok", "locked", "deleted", "4xx", "5xx", "conn", "wrong")

    def __init__(self):
        self.latency = collections.defaultdict(list)
        self.counts = collections.defaultdict(collections.Counter)
        self.bytes = collections.Counter()
        self.samples = collections.defaultdict(list)  # a few failure descriptions per kind

    def add(self, kind, cls, seconds, nbytes=0, detail=None):
        self.latency[kind].append(seconds)
        self.counts[kind][cls] += 1
        self.bytes[kind] += nbytes
        if detail and len(self.samples[kind]) < 5:
            self.samples[kind].append(f"{cls}: {detail}")

    def merge(self, other):
        for k, v in other.latency.items():
            self.latency[k] += v
        for k, v in other.counts.items():
            self.counts[k].update(v)
        self.bytes.update(other.bytes)
        for k, v in other.samples.items():
            self.samples[k] = (self.samples[k] + v)[:5]


class Answer:
    def __init__(self, status, body, nbytes, digest):
        self.status, self.body, self.nbytes, self.digest = status, body, nbytes, digest

    def json(self):
        return json.loads(self.body) if self.body else {}

    def message(self):
        try:
            return self.json().get("error", {}).get("message") or ""
        except (ValueError, AttributeError):
            return ""


class Conn:
    """One thread's keep-alive connection. A request that fails on the wire is not retried: it
    is counted as a connection error and the next request opens a new connection."""

    def __init__(self, host, port, stats):
        self.host, self.port, self.stats = host, port, stats
        self.conn = None

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def send(self, method, path, headers, body=None, stream=False):
        """Returns an Answer; raises ConnectionFailed. A streamed 200 body is hashed, not kept
        (its first four bytes are)."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
        try:
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            if stream and resp.status == 200:
                h, n, head = hashlib.sha256(), 0, b""
                while chunk := resp.read(MiB):
                    if len(head) < 4:
                        head += chunk[:4]
                    h.update(chunk)
                    n += len(chunk)
                answer = Answer(resp.status, head, n, h.hexdigest())
            else:
                data = resp.read()
                answer = Answer(resp.status, data, len(data), None)
            if resp.will_close:
                self.close()
            return answer
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise ConnectionFailed(f"{type(e).__name__}: {e}") from None


class ConnectionFailed(Exception):
    pass


class PortalClient:
    """Requests to one portal over one connection, as its owner (or anonymously)."""

    def __init__(self, base, portal, stats):
        u = urllib.parse.urlsplit(base)
        self.portal, self.stats = portal, stats
        self.conn = Conn(u.hostname, u.port, stats)

    def headers(self, auth=True, extra=None):
        h = {}
        if self.portal.origin:
            h["Origin"] = self.portal.origin
        if auth:
            h["Authorization"] = f"Bearer {self.portal.token}"
        h.update(extra or {})
        return h

    def request(self, kind, method, path, *, body=None, auth=True, stream=False, check=None, deleted=None,
                ctype=None):
        """Sends, times and classifies one request. `check(answer)` returns a complaint (a
        string) for a wrong 2xx answer; `deleted` says whether a 404 is for a backup the job
        loop deleted (a download of it that breaks off is then expected too). Returns the
        Answer when it was 2xx and right, else None."""
        if isinstance(body, (dict, list)):
            body, ctype = json.dumps(body).encode(), "application/json"
        extra = {"Content-Type": ctype} if ctype else None
        t0 = time.monotonic()
        try:
            a = self.conn.send(method, path, self.headers(auth, extra), body, stream)
        except ConnectionFailed as e:
            cls = "deleted" if deleted and deleted() else "conn"
            self.stats.add(kind, cls, time.monotonic() - t0, detail=f"{method} {path}: {e}")
            return None
        took = time.monotonic() - t0
        if 200 <= a.status < 300:
            try:
                complaint = check(a) if check else None
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                complaint = f"unreadable answer: {type(e).__name__}: {e}"
            if complaint:
                cls = "deleted" if deleted and deleted() else "wrong"
                self.stats.add(kind, cls, took, a.nbytes, f"{method} {path}: {complaint}")
                return None
            self.stats.add(kind, "ok", took, a.nbytes)
            return a
        if a.status == 403 and a.message().startswith(LOCKED):
            self.stats.add(kind, "locked", took)
        elif a.status == 404 and deleted and deleted():
            self.stats.add(kind, "deleted", took)
        else:
            cls = "5xx" if a.status >= 500 else "4xx"
            text = a.body[:300].decode(errors="replace") if isinstance(a.body, bytes) else ""
            self.stats.add(kind, cls, took, detail=f"{method} {path}: HTTP {a.status} {text}")
        return None


# --------------------------------------------------------------------------------------------
# The portals and their data
# --------------------------------------------------------------------------------------------


class FileSpec:
    """A generated file: its bytes are made again from (seed, size, text) when needed."""

    def __init__(self, folder, title, seed, size, text):
        self.folder, self.title, self.seed, self.size, self.text = folder, title, seed, size, text
        self.id = None
        self.sha256 = hashlib.sha256(self.data()).hexdigest()

    def data(self):
        rng = random.Random(self.seed)
        if not self.text:
            return rng.randbytes(self.size)
        words = [rng.randbytes(rng.randint(2, 9)).hex() for _ in range(400)]
        out, n = [], 0
        while n < self.size:
            line = " ".join(rng.choices(words, k=12)) + "\n"
            out.append(line)
            n += len(line)
        return "".join(out).encode()[:self.size]


class Portal:
    def __init__(self, index, alias, origin):
        self.index, self.alias, self.origin = index, alias, origin
        self.token = None
        self.tenant_id = None
        self.folders = {}  # path -> id (static: never changed by the load)
        self.files = []  # FileSpec, static
        self.changes_folder = None
        self.schedule_hour = None
        self.lock = threading.Lock()
        self.backup_tasks = set()  # every backup task id this portal's loop started
        self.restore_tasks = set()
        self.deleted = set()  # backup ids the loop deleted
        self.links = []  # (backup id, link) from the loop's last history listing
        self.completed = []  # backup ids that completed, oldest first (not deleted)

    def by_folder(self):
        out = collections.defaultdict(set)
        for f in self.files:
            out[f.folder].add(f.title)
        return out


def generate(portal, megabytes, seed):
    """The portal's layout and files, deterministic from the seed."""
    rng = random.Random(f"{seed}-{portal.index}")
    layout, per_folder = [], collections.Counter()

    def add_room():
        room = f"Room {len(layout) // 3 + 1}"
        layout.extend([room, f"{room}/Drafts", f"{room}/Drafts/Old"])

    for _ in range(3):
        add_room()
    target, total, files, n = int(megabytes * MiB), 0, [], 0
    while total < target:
        folder = rng.choice(layout)
        if per_folder[folder] >= FOLDER_FILES:
            add_room()
            folder = layout[-3]
        per_folder[folder] += 1
        big = rng.random() < 0.04
        size = min(rng.randint(2 * MiB, 8 * MiB) if big else int(rng.lognormvariate(10.8, 1.1)), 8 * MiB)
        size = max(4 * KiB, min(size, target - total + 4 * KiB))
        text = rng.random() < 0.5
        n += 1
        files.append(FileSpec(folder, f"file-{n:04d}.{'txt' if text else 'bin'}", rng.getrandbits(64), size, text))
        total += size
    return layout, files


def multipart(title, data):
    boundary = "----backspace-load-" + hashlib.sha1(title.encode()).hexdigest()[:16]
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"File\"; filename=\"{title}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def must(answer, what):
    if answer is None:
        raise LoadError(f"setup: {what} failed")
    return answer.json()


def setup_portal(base, portal, megabytes, seed, stats):
    """Creates the portal's folders, files and schedule; signs in."""
    c = PortalClient(base, portal, stats)
    if portal.index > 0:
        body = {"portalName": portal.alias, "firstName": "Load", "lastName": "Test", "email": EMAIL,
                "password": PORTAL_PASSWORD, "language": "en"}
        must(c.request("setup", "POST", "/apisystem/portal/register", body=body, auth=False), "registration")
    password = PASSWORD if portal.index == 0 else PORTAL_PASSWORD
    r = must(c.request("setup", "POST", "/api/2.0/authentication", body={"userName": EMAIL, "password": password},
                       auth=False), "sign-in")
    portal.token = r["response"]["token"]
    r = must(c.request("setup", "GET", "/api/2.0/portal"), "the portal")
    portal.tenant_id = r["response"]["tenantId"]
    if r["response"]["tenantAlias"] != portal.alias:
        raise LoadError(f"setup: portal {portal.alias!r} answers as {r['response']['tenantAlias']!r}")
    layout, portal.files = generate(portal, megabytes, seed)
    for path in layout + ["Changes"]:
        parent, _, title = path.rpartition("/")
        if not parent:
            r = c.request("setup", "POST", "/api/2.0/files/rooms", body={"title": title, "roomType": "CustomRoom"})
        else:
            r = c.request("setup", "POST", f"/api/2.0/files/folder/{portal.folders[parent]}", body={"title": title})
        portal.folders[path] = must(r, f"creating {path}")["response"]["id"]
    portal.changes_folder = portal.folders.pop("Changes")
    for f in portal.files:
        body, ctype = multipart(f.title, f.data())
        r = c.request("setup", "POST", f"/api/2.0/files/{portal.folders[f.folder]}/upload", body=body, ctype=ctype)
        f.id = must(r, f"uploading {f.title}")["response"][0]["id"]
    # Half a day ahead: the schedule exists (the clients read it) but never fires.
    portal.schedule_hour = (time.gmtime().tm_hour + 12) % 24
    body = {"storageType": 4, "backupsStored": 5, "cronParams": {"period": "EveryDay", "hour": portal.schedule_hour}}
    must(c.request("setup", "POST", "/api/2.0/backup/createbackupschedule", body=body), "the schedule")
    c.conn.close()


# --------------------------------------------------------------------------------------------
# The job loop of a portal and the clients
# --------------------------------------------------------------------------------------------


def others(portals, portal, attr):
    out = set()
    for p in portals:
        if p is not portal:
            with p.lock:
                out |= getattr(p, attr)
    return out


def check_job(portals, portal, attr):
    """A progress answer must be absent or a job of this portal."""
    def check(a):
        r = a.json().get("response")
        if r is None:
            return None
        if r.get("tenantId") != portal.tenant_id:
            return f"tenantId {r.get('tenantId')} in portal {portal.tenant_id}'s progress"
        if r.get("taskId") in others(portals, portal, attr):
            return f"another portal's job {r.get('taskId')}"
        return None
    return check


def check_history(portals, portal):
    def check(a):
        records = a.json().get("response")
        if not isinstance(records, list):
            return "no list"
        theirs = others(portals, portal, "backup_tasks")
        for r in records:
            if r.get("id") in theirs:
                return f"another portal's backup {r.get('id')}"
            if not str(r.get("fileName", "")).startswith(portal.alias + "_"):
                return f"file name {r.get('fileName')!r}"
            if not r.get("link"):
                return f"no link for {r.get('id')}"
        return None
    return check


def wait_job(c, kind, path, task, deadline, auth=True):
    """Polls a progress endpoint until `task` completes; returns its progress or None."""
    while time.monotonic() < deadline:
        a = c.request(kind, "GET", path, auth=auth)
        r = a and a.json().get("response")
        if r and r.get("taskId") == task and r.get("isCompleted"):
            return r
        time.sleep(0.02)
    return None


class JobLoop(threading.Thread):
    """A portal's backups, restores and deletions until the end of the run."""

    def __init__(self, base, portals, portal, workdir, stop, args, rng):
        super().__init__(daemon=True, name=f"jobs-{portal.alias}")
        self.portals, self.portal, self.stop, self.args, self.rng = portals, portal, stop, args, rng
        self.stats = Stats()
        self.c = PortalClient(base, portal, self.stats)
        self.local_dir = os.path.join(workdir, "targets", portal.alias)
        os.makedirs(self.local_dir, exist_ok=True)
        self.backups = self.restores = self.deletes = 0
        self.failures = []

    def fail(self, what):
        self.failures.append(what)
        log(f"  {self.portal.alias}: {what}")

    def run(self):
        try:
            self.loop()
        except Exception as e:  # a bug here must not pass for a quiet run
            self.fail(f"the job loop stopped: {type(e).__name__}: {e}")

    def loop(self):
        p, n = self.portal, 0
        while not self.stop.is_set():
            n += 1
            # A changed file, so that each backup has new data and a deletion frees some.
            body, ctype = multipart(f"change-{n % 8}.bin", random.Random(self.rng.random()).randbytes(256 * KiB))
            self.c.request("upload", "POST", f"/api/2.0/files/{p.changes_folder}/upload", body=body, ctype=ctype)
            if n % 2:
                target = {"storageType": "Local", "storageParams": [{"key": "filePath", "value": self.local_dir}]}
            else:
                target = {"storageType": "DataStore"}
            a = self.c.request("startbackup", "POST", "/api/2.0/backup/startbackup", body=target,
                               check=check_job(self.portals, p, "backup_tasks"))
            if a is None:
                self.fail("startbackup was refused")
                self.stop.wait(0.5)
                continue
            task = a.json()["response"]["taskId"]
            with p.lock:
                p.backup_tasks.add(task)
            done = wait_job(self.c, "getbackupprogress", "/api/2.0/backup/getbackupprogress", task,
                            time.monotonic() + 600)
            if done is None or done.get("error"):
                self.fail(f"backup {task} failed: {done}")
                continue
            self.backups += 1
            with p.lock:
                p.completed.append(task)
            self.refresh_links()
            if self.args.restore_every and self.backups % self.args.restore_every == 0 and not self.stop.is_set():
                self.restore()
            while len(p.completed) > self.args.keep and not self.stop.is_set():
                with p.lock:
                    victim = p.completed.pop(0)
                    p.deleted.add(victim)
                if self.c.request("deletebackup", "DELETE", f"/api/2.0/backup/deletebackup/{victim}") is None:
                    self.fail(f"deleting {victim} failed")
                self.deletes += 1
                self.refresh_links()

    def refresh_links(self):
        a = self.c.request("getbackuphistory", "GET", "/api/2.0/backup/getbackuphistory",
                           check=check_history(self.portals, self.portal))
        if a is not None:
            links = [(r["id"], r["link"]) for r in a.json()["response"]]
            with self.portal.lock:
                self.portal.links = links

    def restore(self):
        p = self.portal
        with p.lock:
            source = self.rng.choice(p.completed)
        a = self.c.request("startrestore", "POST", "/api/2.0/backup/startrestore",
                           body={"backupId": source, "notify": False},
                           check=check_job(self.portals, p, "restore_tasks"))
        if a is None:
            self.fail(f"startrestore of {source} was refused")
            return
        task = a.json()["response"]["taskId"]
        with p.lock:
            p.restore_tasks.add(task)
        done = wait_job(self.c, "getrestoreprogress", "/api/2.0/backup/getrestoreprogress", task,
                        time.monotonic() + 600, auth=False)
        if done is None or done.get("error"):
            self.fail(f"restore {task} from {source} failed: {done}")
        else:
            self.restores += 1


class Client(threading.Thread):
    """One client: one connection to one portal, requests without pause until the end."""

    def __init__(self, base, portals, portal, stop, seed, downloads):
        super().__init__(daemon=True, name=f"client-{seed}")
        self.portals, self.portal, self.stop, self.downloads = portals, portal, stop, downloads
        self.rng = random.Random(seed)
        self.stats = Stats()
        self.c = PortalClient(base, portal, self.stats)
        self.expected = portal.by_folder()
        self.folder_paths = sorted(portal.folders)
        self.error = None

    def run(self):
        kinds = [k for k, _ in ACTIONS]
        weights = [w for _, w in ACTIONS]
        try:
            while not self.stop.is_set():
                getattr(self, self.rng.choices(kinds, weights)[0].replace(" ", "_"))()
        except Exception as e:
            self.error = f"{type(e).__name__}: {e}"
        self.c.conn.close()

    def getbackupprogress(self):
        self.c.request("getbackupprogress", "GET", "/api/2.0/backup/getbackupprogress",
                       check=check_job(self.portals, self.portal, "backup_tasks"))

    def getrestoreprogress(self):
        self.c.request("getrestoreprogress", "GET", "/api/2.0/backup/getrestoreprogress", auth=False,
                       check=check_job(self.portals, self.portal, "restore_tasks"))

    def getbackuphistory(self):
        self.c.request("getbackuphistory", "GET", "/api/2.0/backup/getbackuphistory",
                       check=check_history(self.portals, self.portal))

    def getbackupschedule(self):
        def check(a):
            r = a.json().get("response") or {}
            got = (r.get("storageType"), r.get("backupsStored"), (r.get("cronParams") or {}).get("hour"))
            want = (4, 5, self.portal.schedule_hour)
            return None if got == want else f"schedule {got}, set {want}"
        self.c.request("getbackupschedule", "GET", "/api/2.0/backup/getbackupschedule", check=check)

    def listing(self):
        path = self.rng.choice(self.folder_paths)

        def check(a):
            files = {f["title"] for f in (a.json().get("response") or {}).get("files") or []}
            return None if files == self.expected[path] else f"{path} lists {sorted(files)}"
        self.c.request("listing", "GET", f"/api/2.0/files/{self.portal.folders[path]}?count=100", check=check)

    def file_download(self):
        f = self.rng.choice(self.portal.files)
        self.c.request("file download", "GET", f"/filehandler.ashx?action=download&fileid={f.id}", stream=True,
                       check=lambda a: None if a.digest == f.sha256 else f"{f.title}: wrong bytes ({a.nbytes} B)")

    def backup_download(self):
        with self.portal.lock:
            links = list(self.portal.links)
        # A whole backup takes long: a few at a time, or they would be all the clients do.
        if not links or not self.downloads.acquire(blocking=False):
            return self.getbackuphistory()
        try:
            self.download_backup(*self.rng.choice(links))
        finally:
            self.downloads.release()

    def download_backup(self, backup, link):
        def check(a):
            return None if a.body == ZSTD_MAGIC and a.nbytes > 4 else f"not a zstd stream ({a.nbytes} B)"

        def deleted():
            with self.portal.lock:
                return backup in self.portal.deleted
        # Signed links need no credential.
        self.c.request("backup download", "GET", link, auth=False, stream=True, check=check, deleted=deleted)


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, max(0, int(round(q * len(sorted_values) + 0.5)) - 1))]


def ms(v):
    return "–" if v is None else f"{v * 1000:.1f}" if v < 1 else f"{v * 1000:.0f}"


def report(stats, seconds):
    rows, table = [], []
    table.append("| request | count | req/s | p50 ms | p90 ms | p99 ms | max ms | MiB | locked | deleted "
                 "| 4xx | 5xx | conn | wrong |")
    table.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    kinds = [k for k in KIND_ORDER if k in stats.counts] + sorted(k for k in stats.counts if k not in KIND_ORDER)
    total = collections.Counter()
    for kind in kinds:
        lat = sorted(stats.latency[kind])
        c = stats.counts[kind]
        total.update(c)
        row = {"request": kind, "count": len(lat), "per_s": len(lat) / seconds,
               "p50_s": percentile(lat, 0.5), "p90_s": percentile(lat, 0.9), "p99_s": percentile(lat, 0.99),
               "max_s": lat[-1] if lat else None, "mib": stats.bytes[kind] / MiB,
               **{cls: c[cls] for cls in Stats.CLASSES}, "samples": stats.samples.get(kind, [])}
        rows.append(row)
        table.append(f"| {kind} | {row['count']} | {row['per_s']:.1f} | {ms(row['p50_s'])} | {ms(row['p90_s'])} | "
                     f"{ms(row['p99_s'])} | {ms(row['max_s'])} | {row['mib']:.0f} | {c['locked']} | {c['deleted']} | "
                     f"{c['4xx']} | {c['5xx']} | {c['conn']} | {c['wrong']} |")
    n = sum(total.values())
    table.append(f"| **all** | {n} | {n / seconds:.1f} | | | | | {sum(stats.bytes.values()) / MiB:.0f} | "
                 f"{total['locked']} | {total['deleted']} | {total['4xx']} | {total['5xx']} | {total['conn']} | "
                 f"{total['wrong']} |")
    return rows, total, "\n".join(table)


def final_check(base, portals, stats):
    """After the run: every portal's static folders and a sample of files are as set up."""
    problems = []
    for p in portals:
        c = PortalClient(base, p, stats)
        expected = p.by_folder()
        for path, fid in p.folders.items():
            a = c.request("final check", "GET", f"/api/2.0/files/{fid}?count=100")
            got = {f["title"] for f in (a.json()["response"].get("files") or [])} if a else None
            if got != expected[path]:
                problems.append(f"{p.alias}: {path} lists {sorted(got) if got else got}")
        for f in random.Random(0).sample(p.files, min(20, len(p.files))):
            a = c.request("final check", "GET", f"/filehandler.ashx?action=download&fileid={f.id}", stream=True)
            if a is None or a.digest != f.sha256:
                problems.append(f"{p.alias}: {f.folder}/{f.title} differs")
        c.conn.close()
    return problems


def parse_args():
    ap = argparse.ArgumentParser(description="Concurrency load: clients, backups and restores at once.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("usage:")[1])
    ap.add_argument("--binary", default="target/release/backspace", help="the backspace binary")
    ap.add_argument("--seconds", type=float, default=60, help="how long the load runs (default 60)")
    ap.add_argument("--clients", type=int, default=32, help="client threads (default 32)")
    ap.add_argument("--portals", type=int, default=2, help="portals, each with its job loop (default 2)")
    ap.add_argument("--megabytes", type=float, default=64, help="MiB of files per portal (default 64)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the data and the clients' choices (default 1)")
    ap.add_argument("--keep", type=int, default=4, help="backups each portal keeps; older ones are deleted "
                                                         "(default 4)")
    ap.add_argument("--restore-every", type=int, default=3, help="a restore after every N backups (default 3; "
                                                                 "0: none)")
    ap.add_argument("--downloads", type=int, default=2, help="whole-backup downloads at a time, over all clients "
                                                             "(default 2)")
    ap.add_argument("--workdir", help="where everything is written (default: a new dir under /var/tmp)")
    ap.add_argument("--keep-workdir", action="store_true", help="keep the work directory")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    args = ap.parse_args()
    if min(args.seconds, args.clients, args.portals, args.megabytes, args.keep, args.downloads) <= 0:
        ap.error("--seconds, --clients, --portals, --megabytes, --keep and --downloads must be positive")
    return args


def main():
    args = parse_args()
    if args.workdir:
        workdir = os.path.abspath(args.workdir)
        if os.path.exists(workdir) and os.listdir(workdir):
            print(f"load: error: --workdir {workdir} is not empty", file=sys.stderr)
            return 2
        os.makedirs(workdir, exist_ok=True)
    else:
        os.makedirs("/var/tmp", exist_ok=True)
        workdir = tempfile.mkdtemp(prefix="backspace-load-", dir="/var/tmp")
    server = None
    try:
        binary = resolve_binary(args.binary)
        # The portals beyond the default one are registered through the API.
        os.environ["BACKSPACE_REGISTRATION"] = "open"
        server = Server(binary, workdir)
        base = server.start()
        log(f"backspace ({binary}) at {base}; work directory {workdir}")
        portals = [Portal(0, "localhost", None)] + [Portal(i, f"load-portal-{i}", f"http://load-portal-{i}")
                                                    for i in range(1, args.portals)]
        setup_stats = Stats()
        t0 = time.monotonic()
        for p in portals:
            setup_portal(base, p, args.megabytes, args.seed, setup_stats)
            log(f"portal {p.alias}: {len(p.files)} files, {sum(f.size for f in p.files) / MiB:.1f} MiB "
                f"in {len(p.folders)} folders")
        log(f"set up in {time.monotonic() - t0:.1f} s; running the load for {args.seconds:g} s "
            f"({args.clients} clients)")

        stop = threading.Event()
        rng = random.Random(args.seed)
        loops = [JobLoop(base, portals, p, workdir, stop, args, random.Random(rng.random())) for p in portals]
        downloads = threading.BoundedSemaphore(args.downloads)
        clients = [Client(base, portals, portals[i % len(portals)], stop, args.seed * 1000 + i, downloads)
                   for i in range(args.clients)]
        with PeakSampler(server.proc.pid) as memory:
            t0 = time.monotonic()
            for t in loops + clients:
                t.start()
            deadline = t0 + args.seconds
            while time.monotonic() < deadline:
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
                if server.proc.poll() is not None:
                    break
            stop.set()
            for t in clients:
                t.join()
            elapsed = time.monotonic() - t0
            for t in loops:
                t.join()  # each finishes its running job
        server.check()

        stats = Stats()
        for t in loops + clients:
            stats.merge(t.stats)
        rows, total, table = report(stats, elapsed)
        check_stats = Stats()
        problems = final_check(base, portals, check_stats)
        failures = [f"{t.portal.alias}: {f}" for t in loops for f in t.failures]
        failures += [f"{t.name}: {t.error}" for t in clients if t.error]
        failures += problems
        failed = sum(total[c] for c in ("4xx", "5xx", "conn", "wrong")) + sum(
            check_stats.counts[k][c] for k in check_stats.counts for c in ("4xx", "5xx", "conn", "wrong"))
        jobs = {t.portal.alias: {"backups": t.backups, "restores": t.restores, "deletes": t.deletes} for t in loops}
        data_mib = sum(f.size for p in portals for f in p.files) / MiB
        summary = [
            f"- {elapsed:.1f} s, {args.clients} clients on {args.portals} portals of {args.megabytes:g} MiB "
            f"({data_mib:.0f} MiB in all), seed {args.seed}, {os.cpu_count()} cores; binary {args.binary}",
            "- jobs: " + "; ".join(f"{a}: {j['backups']} backups, {j['restores']} restores, {j['deletes']} deletes"
                                   for a, j in jobs.items()),
            f"- server peak RSS {memory.peak_kib / 1024:.0f} MiB (sampled every 50 ms)",
            f"- failed requests: {failed}; failed jobs or checks: {len(failures)}",
            "- latency is to the last byte of the answer; `locked` = 403 while the portal restores and "
            "`deleted` = 404 for a backup the job loop had just deleted (expected answers)",
        ]
        print(table + "\n\n" + "\n".join(summary))
        for row in rows:
            for s in row["samples"]:
                print(f"  {row['request']}: {s}", file=sys.stderr)
        for f in failures:
            print(f"  failure: {f}", file=sys.stderr)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"config": vars(args), "seconds": elapsed, "jobs": jobs, "rows": rows,
                           "totals": dict(total), "peak_rss_kib": memory.peak_kib, "failures": failures,
                           "table_markdown": table}, f, indent=2)
            log(f"results written to {args.json}")
        return 1 if failed or failures else 0
    except BenchError as e:
        print(f"load: error: {e}", file=sys.stderr)
        if server:
            print(tail(server.stderr_text()), file=sys.stderr)
        return 1
    finally:
        if server:
            server.stop()
        if args.keep_workdir:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
