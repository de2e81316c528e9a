#!/usr/bin/env python3
"""Paced withdrawal load for bench/e2e/run.sh and bench/soak/run.sh (stdlib only).

    load.py API_URL --count N --rate R --users U --first-user F --run-id ID
            [--workers W] [--ids-out FILE] [--deposits-only | --no-deposits] [--own-recipient]

Credits U fresh accounts F .. F+U-1 (POST /v1/accounts/{id}/deposits, 100 each), then sends N
withdrawals (POST /v1/withdrawals) at R per second on a fixed schedule: withdrawal i leaves at
start + i/R whatever the earlier ones took (a late one leaves at once; the lag is reported).
W worker processes (default 1) share the schedule (worker k sends i = k, k+W, ...), each over its
own keep-alive connection and with its own slice of the users, so no two workers contend for
one account. Every request has its own Idempotency-Key (a retried request is not a second
withdrawal). --ids-out writes the withdrawal ids, one a line. --deposits-only credits and stops;
--no-deposits sends to accounts credited before. Withdrawals go to a fresh random address each,
or with --own-recipient to one address per user (derived from the user id), so that the chain's
account count stays at the number of users however long the run (bench/soak: a dev chain's cost
per block grows with its accounts). Progress on stderr. Exits 1 on any refused request.
"""

import argparse
import hashlib
import multiprocessing
import http.client
import json
import queue
import secrets
import sys
import time
from urllib.parse import urlsplit


class api_client:
    def __init__(self, url):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.connection = None

    def call(self, method, path, body, headers=None, attempts=3):
        data = json.dumps(body).encode()
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        for attempt in range(attempts):
            try:
                if self.connection is None:
                    self.connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
                self.connection.request(method, path, data, all_headers)
                response = self.connection.getresponse()
                text = response.read().decode()
                return response.status, text
            except (OSError, http.client.HTTPException):
                if self.connection is not None:
                    self.connection.close()
                self.connection = None
                if attempt + 1 == attempts:
                    raise
                time.sleep(0.5)
        raise AssertionError("unreachable")


def progress(done, total, label):
    if sys.stderr.isatty():
        width = 40
        filled = done * width // max(total, 1)
        sys.stderr.write(f"\r[load] [{'#' * filled:<{width}}] {done}/{total} {label}\033[K")
        if done == total:
            sys.stderr.write("\n")
    else:
        sys.stderr.write(f"[load] {done}/{total} {label}\n")
    sys.stderr.flush()


def total_users(args):
    return args.users if args.deposits_only else min(args.users, max(args.count, 1))


def user_slice(args, worker):
    """The first user and the number of users of WORKER (contiguous, disjoint slices)."""
    users = total_users(args)
    lo = worker * users // args.workers
    hi = (worker + 1) * users // args.workers
    return args.first_user + lo, hi - lo


def deposits(client, first, users, counter):
    for user in range(first, first + users):
        status, text = client.call("POST", f"/v1/accounts/{user}/deposits", {"amount": "100"})
        if status // 100 != 2:
            raise RuntimeError(f"deposit for user {user} refused: {status} {text}")
        with counter.get_lock():
            counter.value += 1
    return [], []


def own_recipient(user):
    """The one address user USER withdraws to under --own-recipient (lower case: no checksum)."""
    return "0x" + hashlib.sha256(f"bench-recipient-{user}".encode()).hexdigest()[:40]


def withdrawals(args, client, worker, first, users, start, counter, failed):
    ids, lags = [], []
    if users == 0:
        return ids, lags
    for n, i in enumerate(range(worker, args.count, args.workers)):
        if failed.value:
            break
        due = start + i / args.rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        lags.append(max(0.0, time.monotonic() - due))
        body = {
            "user_id": first + n % users,
            "to_address": own_recipient(first + n % users) if args.own_recipient else "0x" + secrets.token_hex(20),
            # 0.00001 .. 0.00999 ETH as an exact decimal string.
            "amount": f"0.{secrets.randbelow(999) + 1:05d}",
            "chain": "eth",
        }
        status, text = client.call("POST", "/v1/withdrawals", body,
                                   {"Idempotency-Key": f"bench-{args.run_id}-{i}"})
        if status != 201:
            raise RuntimeError(f"withdrawal {i} refused: {status} {text}")
        ids.append(json.loads(text)["withdrawal_id"])
        with counter.get_lock():
            counter.value += 1
    return ids, lags


def run_worker(args, worker, start, counter, failed, results):
    """Worker WORKER: its deposits (start is None), else its share of the schedule; puts
    (ids, schedule lags in s) or None (failed) on RESULTS."""
    client = api_client(args.api)
    first, users = user_slice(args, worker)
    try:
        if start is None:
            results.put(deposits(client, first, users, counter))
        else:
            results.put(withdrawals(args, client, worker, first, users, start, counter, failed))
    except (RuntimeError, OSError, http.client.HTTPException, ValueError, KeyError) as error:
        sys.stderr.write(f"[load] worker {worker}: {error}\n")
        failed.value = 1
        results.put(None)


def run_phase(args, start, total, label):
    """Runs the W workers of one phase with progress; returns all ids and lags (exits on failure)."""
    counter, failed = multiprocessing.Value("q", 0), multiprocessing.Value("b", 0)
    results = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=run_worker, args=(args, k, start, counter, failed, results))
               for k in range(args.workers)]
    for w in workers:
        w.start()
    step, shown, answers = max(total // 10, 1), -1, []
    while len(answers) < len(workers):
        try:
            answers.append(results.get(timeout=0.5))
        except queue.Empty:
            if not any(w.is_alive() for w in workers):
                break
        done = counter.value
        if sys.stderr.isatty() or done // step != shown:
            shown = done // step
            progress(done, total, label)
    for w in workers:
        w.join()
    if failed.value or len(answers) < len(workers) or None in answers:
        sys.exit(f"[load] {label}: a worker failed (see above)")
    progress(counter.value, total, label)
    return [i for a in answers for i in a[0]], sorted(lag for a in answers for lag in a[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("api")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--first-user", type=int, required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--ids-out")
    phase = parser.add_mutually_exclusive_group()
    phase.add_argument("--deposits-only", action="store_true")
    phase.add_argument("--no-deposits", action="store_true")
    parser.add_argument("--own-recipient", action="store_true")
    args = parser.parse_args()
    if args.workers < 1 or args.users < 1 or args.rate <= 0 or args.count < 0:
        parser.error("--workers and --users must be at least 1, --rate above 0, --count at least 0")

    if not args.no_deposits:
        run_phase(args, None, total_users(args), "accounts credited")
    if args.deposits_only:
        return

    # The schedule starts a little ahead, so the workers' start-up is not counted as lag.
    start = time.monotonic() + 0.2
    ids, lags = run_phase(args, start, args.count, "withdrawals sent")
    elapsed = time.monotonic() - start
    if args.ids_out:
        with open(args.ids_out, "w", encoding="utf-8") as f:
            f.write("".join(f"{i}\n" for i in ids))
    p99 = lags[min(len(lags) - 1, (99 * len(lags) + 99) // 100 - 1)] * 1000 if lags else 0.0
    sys.stderr.write(f"[load] sent {len(ids)} withdrawals in {elapsed:.1f}s "
                     f"({len(ids) / elapsed if elapsed > 0 else 0:.1f}/s, target {args.rate:g}/s, "
                     f"{args.workers} workers); lag behind the schedule p99 {p99:.1f} ms, "
                     f"max {lags[-1] * 1000 if lags else 0.0:.1f} ms\n")


if __name__ == "__main__":
    main()
