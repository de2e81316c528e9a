#!/usr/bin/env python3
"""Why does a dev chain's memory grow? One anvil of its own on a free port, a steady stream of
simple ETH transfers and its RSS sampled over time, so that flag sets and traffic shapes can be
compared in isolation (the experiment behind bench/soak's chain flags; see bench/README.md, "Soak").

  bench/soak/anvil_memory.py [--minutes M] [--rate R] [--recipients random|N]
                             [--reads] [--sample S] [--anvil PATH] [-- ANVIL_FLAG...]

  --minutes     how long to send (default 3)
  --rate        transfers per second (default 200), sent every 100 ms as one JSON-RPC batch of
                eth_sendTransaction from anvil's unlocked dev account 0 (anvil signs them), one
                sender with consecutive nonces as broadcaster-worker's one hot wallet
  --recipients  'random': a fresh address per transfer (what bench/e2e/load.py sends: every
                withdrawal creates an account on the chain); N: cycle over N fixed addresses
  --reads       also ask what broadcaster-worker asks once per block: eth_blockNumber,
                eth_getBlockByNumber(latest), eth_getBlockReceipts (12 deep),
                eth_getTransactionCount at the head and 12 deep (a historical state), eth_getBalance,
                eth_maxPriorityFeePerGas, eth_gasPrice
  --sample      seconds between RSS samples (default 30)
  flags after -- go to anvil (always --block-time 1 --quiet --balance 100000000)

Prints one TSV line per sample: elapsed_s, sent, mined (the sender's nonce at the head), anvil VmRSS
MiB, anvil CPU s, latest block;
then one line with the RSS growth in MiB per minute over the second half of the samples in which
transfers were mined (a line says so when mining stalled). Loopback only.
"""
import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request

SENDER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # anvil dev account 0 (unlocked)


def rpc(url, payload, timeout=30):
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def call(url, method, params):
    return rpc(url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).get("result")


def proc_stats(pid):
    rss = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return rss, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sample(url, pid, elapsed, sent):
    """One sample (elapsed, rss, mined), printed as a TSV line."""
    rss, cpu = proc_stats(pid)
    mined = int(call(url, "eth_getTransactionCount", [SENDER, "latest"]), 16)
    print(f"{elapsed:.0f}\t{sent}\t{mined}\t{rss:.0f}\t{cpu:.1f}\t{int(call(url, 'eth_blockNumber', []), 16)}", flush=True)
    return elapsed, rss, mined


def reads(url):
    latest = int(call(url, "eth_blockNumber", []), 16)
    deep = hex(max(0, latest - 12))
    rpc(url, [
        {"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": [hex(latest), False]},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_getBlockReceipts", "params": [deep]},
        {"jsonrpc": "2.0", "id": 3, "method": "eth_getTransactionCount", "params": [SENDER, deep]},
        {"jsonrpc": "2.0", "id": 4, "method": "eth_getTransactionCount", "params": [SENDER, "latest"]},
        {"jsonrpc": "2.0", "id": 5, "method": "eth_getBalance", "params": [SENDER, "latest"]},
        {"jsonrpc": "2.0", "id": 6, "method": "eth_maxPriorityFeePerGas", "params": []},
        {"jsonrpc": "2.0", "id": 7, "method": "eth_gasPrice", "params": []},
    ])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--recipients", default="random")
    parser.add_argument("--reads", action="store_true")
    parser.add_argument("--sample", type=float, default=30)
    parser.add_argument("--anvil", default=os.path.join(os.path.dirname(__file__), "../../.local/bin/anvil"))
    parser.add_argument("anvil_flags", nargs="*")
    args = parser.parse_args()
    if args.recipients != "random" and not args.recipients.isdigit():
        parser.error("--recipients takes 'random' or a number of fixed addresses")
    fixed = [] if args.recipients == "random" else ["0x" + secrets.token_hex(20) for _ in range(int(args.recipients))]

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    anvil = subprocess.Popen([args.anvil, "--host", "127.0.0.1", "--port", str(port), "--block-time", "1",
                              "--quiet", "--balance", "100000000", *args.anvil_flags],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                call(url, "eth_chainId", [])
                break
            except OSError:
                time.sleep(0.2)
        print(f"# anvil pid {anvil.pid} port {port} flags {' '.join(args.anvil_flags) or '(none)'}; "
              f"rate {args.rate}/s recipients {args.recipients} reads {args.reads}", flush=True)
        print("elapsed_s\tsent\tmined\trss_mib\tcpu_s\tblock", flush=True)
        per_tick = max(1, args.rate // 10)
        start = time.monotonic()
        end = start + args.minutes * 60
        next_sample, next_read, tick, sent, samples = start, start, 0, 0, []
        nonce = 0  # a fresh chain
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= next_sample:
                samples.append(sample(url, anvil.pid, now - start, sent))
                next_sample += args.sample
            if args.reads and now >= next_read:
                reads(url)
                next_read += 1
            batch = []
            for k in range(per_tick):
                to = fixed[sent % len(fixed)] if fixed else "0x" + secrets.token_hex(20)
                batch.append({"jsonrpc": "2.0", "id": k, "method": "eth_sendTransaction",
                              "params": [{"from": SENDER, "to": to, "value": "0x1", "nonce": hex(nonce)}]})
                nonce += 1
                sent += 1
            errors = [r["error"] for r in rpc(url, batch) if "error" in r]
            if errors:
                sys.exit(f"anvil refused a transfer: {errors[0]}")
            tick += 1
            delay = start + tick / 10 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        samples.append(sample(url, anvil.pid, time.monotonic() - start, sent))
        # Only while transfers were mined: anvil's pool can leave one of eth_sendTransaction's
        # transactions queued for good (seen with --prune-history), every later nonce waits
        # behind it and nothing more is mined (broadcaster-worker re-sends such a transaction).
        mining = [samples[0]] + [b for a, b in zip(samples, samples[1:]) if b[2] > a[2]]
        if mining[-1] is not samples[-1]:
            print(f"# mining stalled after {mining[-1][0]:.0f} s at nonce {mining[-1][2]}: growth measured until then",
                  flush=True)
        half = [m for m in mining if m[0] >= mining[-1][0] / 2]
        growth = (half[-1][1] - half[0][1]) / max(1e-9, (half[-1][0] - half[0][0]) / 60)
        print(f"# growth over the second half: {growth:.1f} MiB/min", flush=True)
    finally:
        anvil.terminate()
        anvil.wait()


if __name__ == "__main__":
    main()
