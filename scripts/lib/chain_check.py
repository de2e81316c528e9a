#!/usr/bin/env python3
"""Checks withdrawals against the chain (stdlib only; used by scripts/demo).

    chain_check.py RPC_URL SAMPLE < rows

rows: one withdrawal a line, `id|tx_hash|to_address|amount`, amount a decimal ETH string.
For every row it asks the node for the transaction and its receipt and checks: mined, status
0x1, recipient and value (exact wei) equal to the withdrawal's. Prints SAMPLE rows as a
table, then one summary line; exits 1 when any withdrawal does not match.
"""

import json
import sys
import urllib.request
from decimal import Decimal

WEI_PER_ETH = Decimal(10) ** 18


def rpc(url, method, params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        answer = json.load(response)
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def check(url, tx_hash, to_address, amount):
    """(ok, block, status text) for one withdrawal."""
    tx = rpc(url, "eth_getTransactionByHash", [tx_hash])
    receipt = rpc(url, "eth_getTransactionReceipt", [tx_hash])
    if tx is None:
        return False, "-", "unknown to the node"
    if receipt is None:
        return False, "-", "not mined"
    block = int(receipt["blockNumber"], 16)
    if receipt.get("status") != "0x1":
        return False, block, f"reverted (status {receipt.get('status')})"
    wei = Decimal(amount) * WEI_PER_ETH
    if (tx.get("to") or "").lower() != to_address.lower():
        return False, block, f"paid {tx.get('to')} instead of {to_address}"
    if int(tx["value"], 16) != wei:
        return False, block, f"paid {int(tx['value'], 16)} wei instead of {wei:f}"
    return True, block, "success"


def main():
    url, sample = sys.argv[1], int(sys.argv[2])
    rows = [line.rstrip("\n").split("|") for line in sys.stdin if line.strip()]
    # Spread the sample over the run: first, last and evenly in between.
    shown = {round(i * (len(rows) - 1) / max(sample - 1, 1)) for i in range(min(sample, len(rows)))}
    matched, failures = 0, []
    print(f"  {'withdrawal':>10}  {'tx hash':<66}  {'block':>6}  on-chain")
    for index, (wid, tx_hash, to_address, amount) in enumerate(rows):
        if not tx_hash:
            ok, block, status = False, "-", "no transaction recorded"
        else:
            try:
                ok, block, status = check(url, tx_hash, to_address, amount)
            except (OSError, RuntimeError, ValueError) as e:
                ok, block, status = False, "-", f"node error: {e}"
        matched += ok
        if not ok:
            failures.append((wid, tx_hash, status))
        if index in shown or not ok and len(failures) <= 5:
            print(f"  {wid:>10}  {tx_hash or '-':<66}  {block:>6}  {status} ({amount} ETH to {to_address})")
    print(f"on chain: {matched}/{len(rows)} transactions mined with status 0x1, "
          f"recipient and wei amount equal to the withdrawal")
    return 0 if matched == len(rows) and rows else 1


if __name__ == "__main__":
    sys.exit(main())
