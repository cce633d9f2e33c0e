#!/usr/bin/env python3
"""The backup benchmark (a command, not a test).

Starts a release build of backspace on a fresh data directory, fills the default portal with a
generated set of files (deterministic from --seed; sizes from 4 KiB to 64 MiB, in rooms and
folders), then backs it up to a Local directory and restores it, and prints throughput and the
server's peak memory (VmHWM) for each step.

usage: scripts/bench.py [--gigabytes 2] [--seed 1] [--binary target/release/backspace]
Needs only the Python standard library. Build first: cargo build --release
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

EMAIL, PASSWORD = "bench@example.com", "Bench-Pass-123"


def call(base, token, method, path, body=None, data=None, headers=None):
    h = {"Authorization": token}
    h.update(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    req = urllib.request.Request(base + path, method=method, data=data, headers=h)
    with urllib.request.urlopen(req, timeout=3600) as r:
        return json.load(r)


def peak_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def wait(base, token, path):
    while True:
        p = call(base, token, "GET", path).get("response")
        if p and p["isCompleted"]:
            if p["error"]:
                sys.exit(f"job failed: {p['error']}")
            return
        time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gigabytes", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--binary", default="target/release/backspace")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="backspace-bench-")
    data_dir, backups = os.path.join(work, "data"), os.path.join(work, "backups")
    os.makedirs(backups)
    env = dict(os.environ, BACKSPACE_OWNER_EMAIL=EMAIL, BACKSPACE_OWNER_PASSWORD=PASSWORD,
               BACKSPACE_LOCAL_BACKUP_ROOTS=backups, BACKSPACE_LOG="warn",
               BACKSPACE_MAX_UPLOAD_BYTES=str(1 << 30))
    server = subprocess.Popen([args.binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = server.stdout.readline()
        base = line.strip().split()[-1]
        req = urllib.request.Request(base + "/api/2.0/authentication", method="POST",
                                     data=json.dumps({"userName": EMAIL, "password": PASSWORD}).encode(),
                                     headers={"Content-Type": "application/json"})
        token = json.load(urllib.request.urlopen(req))["response"]["token"]

        target = int(args.gigabytes * (1 << 30))
        rooms = [call(base, token, "POST", "/api/2.0/files/rooms", {"title": f"Room {i}", "roomType": 5})["response"]["id"]
                 for i in range(4)]
        folders = list(rooms)
        for room in rooms:
            for j in range(3):
                folders.append(call(base, token, "POST", f"/api/2.0/files/folder/{room}", {"title": f"Folder {j}"})["response"]["id"])
        total, count, t0 = 0, 0, time.monotonic()
        while total < target:
            size = min(int(rng.lognormvariate(13, 2.2)), 64 << 20, target - total)
            size = max(size, 4096)
            folder = rng.choice(folders)
            blob = rng.randbytes(size)
            call(base, token, "POST", f"/api/2.0/files/{folder}/insert?title=file-{count}.bin", data=blob,
                 headers={"Content-Type": "application/octet-stream"})
            total += size
            count += 1
        gen = time.monotonic() - t0
        print(f"portal: {count} files, {total / (1 << 30):.2f} GiB in {len(folders)} folders "
              f"(uploaded in {gen:.1f} s, {total / gen / (1 << 20):.0f} MiB/s)")
        base_peak = peak_kib(server.pid)

        t0 = time.monotonic()
        call(base, token, "POST", "/api/2.0/backup/startbackup",
             {"storageType": "Local", "storageParams": [{"key": "filePath", "value": backups}]})
        wait(base, token, "/api/2.0/backup/getbackupprogress")
        took = time.monotonic() - t0
        archive = os.listdir(backups)[0]
        size = os.path.getsize(os.path.join(backups, archive))
        print(f"backup:  {took:.1f} s, {total / took / (1 << 20):.0f} MiB/s of portal data, "
              f"archive {size / (1 << 30):.2f} GiB, server peak RSS {peak_kib(server.pid) / 1024:.0f} MiB "
              f"(after upload: {base_peak / 1024:.0f} MiB)")

        history = call(base, token, "GET", "/api/2.0/backup/getbackuphistory")["response"]
        t0 = time.monotonic()
        call(base, token, "POST", "/api/2.0/backup/startrestore", {"backupId": history[0]["id"]})
        wait(base, token, "/api/2.0/backup/getrestoreprogress")
        took = time.monotonic() - t0
        print(f"restore: {took:.1f} s, {total / took / (1 << 20):.0f} MiB/s (verify pass + stage pass), "
              f"server peak RSS {peak_kib(server.pid) / 1024:.0f} MiB")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
