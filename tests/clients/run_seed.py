"""Runs the seed example (../shared/seed/*.txt) against a server, changing only the host, the
key and the backup id, exactly as a user would.

usage: run_seed.py python|node SEED_FILE HOST KEY BACKUP_ID
Prints the script's own output; exits with its exit code.
"""
import os
import re
import subprocess
import sys
import tempfile
import textwrap


def block(text: str, fence: str) -> str:
    match = re.search(r"``` " + fence + r"\n(.*?)\n\s*```", text, re.S)
    if not match:
        sys.exit(f"no ``` {fence} block in the seed file")
    # The blocks sit indented inside the page's tabs.
    return textwrap.dedent(match.group(1))


def main() -> int:
    lang, seed, host, key, backup_id = sys.argv[1:6]
    text = open(seed, encoding="utf-8").read()
    if lang == "python":
        code = block(text, "py")
        code = code.replace("'https://yourportal.onlyoffice.com'", repr(host))
        code = code.replace("'your_api_key'", repr(key))
        code = code.replace("'your-backup-id'", repr(backup_id))
        suffix, cmd = ".py", [sys.executable]
    else:
        code = block(text, "ts")
        code = code.replace("'https://yourportal.onlyoffice.com'", repr(host))
        code = code.replace("'your_api_key'", repr(key))
        code = code.replace("'your-backup-id'", repr(backup_id))
        suffix, cmd = ".js", ["node"]
    for placeholder in ("yourportal.onlyoffice.com", "your_api_key", "your-backup-id"):
        if placeholder in code:
            sys.exit(f"placeholder {placeholder} was not replaced: the seed changed shape")
    with tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False) as f:
        f.write(code)
        path = f.name
    try:
        done = subprocess.run(cmd + [path], capture_output=True, text=True, timeout=120)
    finally:
        os.unlink(path)
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
