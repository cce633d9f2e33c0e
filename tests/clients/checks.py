"""What the SDK scripts share: counted checks and bounded polling."""
import time

passed = 0


def check(condition, what):
    """Fails with `what` unless `condition`; counts the checks that pass."""
    global passed
    if not condition:
        raise AssertionError(what)
    passed += 1


def until(fetch, done, what, seconds=120):
    """Polls `fetch` until `done(value)`; fails after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last: {value}")
        time.sleep(0.1)
