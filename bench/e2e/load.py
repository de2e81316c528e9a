#!/usr/bin/env python3
"""Paced withdrawal load for bench/e2e/run.sh (stdlib only).

    load.py API_URL --count N --rate R --users U --run-id ID --ids-out FILE

Credits U fresh accounts (POST /v1/accounts/{id}/deposits), then sends N withdrawals
(POST /v1/withdrawals) at R per second on a fixed schedule over one keep-alive connection,
each with its own Idempotency-Key (a retried request is not a second withdrawal). Writes the
withdrawal ids to FILE, one a line. Progress on stderr. Exits 1 on any refused request.
"""

import argparse
import http.client
import json
import os
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
        sys.stderr.write(f"\r[e2e] [{'#' * filled:<{width}}] {done}/{total} {label}\033[K")
        if done == total:
            sys.stderr.write("\n")
    elif done == total or done % max(total // 10, 1) == 0:
        sys.stderr.write(f"[e2e] {done}/{total} {label}\n")
    sys.stderr.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("api")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--first-user", type=int, required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--ids-out", required=True)
    args = parser.parse_args()

    client = api_client(args.api)
    users = min(args.users, args.count)
    for u in range(users):
        user = args.first_user + u
        status, text = client.call("POST", f"/v1/accounts/{user}/deposits", {"amount": "100"})
        if status // 100 != 2:
            sys.exit(f"deposit for user {user} refused: {status} {text}")

    ids, start = [], time.monotonic()
    for i in range(args.count):
        # Fixed schedule: request i leaves at start + i/rate, whatever the previous one took.
        delay = start + i / args.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        body = {
            "user_id": args.first_user + i % users,
            "to_address": "0x" + secrets.token_hex(20),
            # 0.00001 .. 0.00999 ETH as an exact decimal string.
            "amount": f"0.{secrets.randbelow(999) + 1:05d}",
            "chain": "eth",
        }
        status, text = client.call("POST", "/v1/withdrawals", body,
                                   {"Idempotency-Key": f"bench-{args.run_id}-{i}"})
        if status != 201:
            sys.exit(f"withdrawal {i} refused: {status} {text}")
        ids.append(json.loads(text)["withdrawal_id"])
        progress(i + 1, args.count, "withdrawals sent")
    elapsed = time.monotonic() - start
    with open(args.ids_out, "w", encoding="utf-8") as f:
        f.write("".join(f"{i}\n" for i in ids))
    sys.stderr.write(f"[e2e] sent {len(ids)} withdrawals in {elapsed:.1f}s "
                     f"({len(ids) / elapsed if elapsed > 0 else 0:.1f}/s, target {args.rate:g}/s)\n")


if __name__ == "__main__":
    main()
