#!/usr/bin/python3
"""Checks conf/monitoring/grafana-dashboard.json and the metric names of the monitoring files.

    check_dashboard.py REPO_ROOT WORK_DIR

1. The dashboard is one Grafana dashboard (uid, title, a `datasource` variable); every panel has a
   unique id, sits inside the 24-column grid and takes its data from ${datasource}.
2. Every query parses (`promtool check rules` on a generated file with one recording rule per query,
   Grafana's $__rate_interval read as 1m) and names at least one metric.
3. Every metric a query or an alert rule names is registered by a daemon in src/ (or is a series
   Prometheus adds itself, such as `up`), so no panel silently shows "No data" and no alert waits
   for a series that never comes. Names of the agreed metric contract that the daemons do not
   register yet are listed as pending (monitoring_files.CONTRACT_PENDING); a pending name that src/
   now registers fails the check, so that list only shrinks.
4. The panels cover what an operator looks at: API rate and latency, outbox backlog and age, relay
   publish rate, commit → ack latency, partitions per relay, the broadcaster pipeline by status,
   confirmations, dead letters.
The integration test (prometheus_itest) runs every query against a real Prometheus scraping the
real daemons and requires data.
"""

import json
import os
import shutil
import subprocess
import sys

import yaml

from monitoring_files import (CONTRACT_PENDING, PROMETHEUS_SERIES, base_name, dashboard_queries, metric_names,
                              registered_metrics, used_metrics)

# What the dashboard must show, as the metric each view is drawn from.
REQUIRED_VIEWS = {
    "API rate": "wallet_http_requests_total",
    "API latency": "wallet_http_request_duration_seconds_bucket",
    "outbox backlog": "outbox_pending_rows",
    "outbox age": "outbox_oldest_pending_age_seconds",
    "relay publish rate": "relay_published_total",
    "commit → ack latency": "relay_commit_to_ack_seconds_bucket",
    "partitions per relay": "relay_partitions_owned",
    "broadcaster pipeline by status": "broadcaster_withdrawals_by_status",
    "chain confirmations": "broadcaster_confirmed_total",
    "dead letters": "relay_dead_lettered_total",
}

problems = []


def check_structure(doc):
    if not doc.get("uid") or not doc.get("title"):
        problems.append("dashboard: uid and title are required")
    variables = [v.get("name") for v in doc.get("templating", {}).get("list", [])]
    if "datasource" not in variables:
        problems.append("dashboard: no `datasource` template variable (import into any Prometheus)")
    ids = set()

    def walk(panels):
        for panel in panels:
            pid = panel.get("id")
            if pid in ids:
                problems.append(f"panel {panel.get('title')!r}: duplicate id {pid}")
            ids.add(pid)
            grid = panel.get("gridPos", {})
            if grid.get("x", 0) + grid.get("w", 0) > 24:
                problems.append(f"panel {panel.get('title')!r}: wider than the 24-column grid")
            if panel.get("type") != "row":
                if panel.get("datasource", {}).get("uid") != "${datasource}":
                    problems.append(f"panel {panel.get('title')!r}: datasource must be ${{datasource}}")
                if not any(t.get("expr") for t in panel.get("targets", [])):
                    problems.append(f"panel {panel.get('title')!r}: no query")
            walk(panel.get("panels", []))

    walk(doc.get("panels", []))


def check_queries_parse(queries, work):
    promtool = shutil.which("promtool")
    if not promtool:
        problems.append("promtool not found: install Debian's prometheus package (scripts/setup)")
        return
    rules = [{"record": f"dashboard:query_{i}", "expr": expr.replace("$__rate_interval", "1m")}
             for i, (_, expr) in enumerate(queries)]
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, "dashboard_queries.yml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f, sort_keys=False)
    result = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        problems.append(f"a dashboard query does not parse:\n{result.stdout}{result.stderr}")


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    repo, work = (os.path.abspath(a) for a in sys.argv[1:])
    path = os.path.join(repo, "conf", "monitoring", "grafana-dashboard.json")
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    check_structure(doc)
    queries = dashboard_queries(path)
    for title, expr in queries:
        if not metric_names(expr):
            problems.append(f"panel {title!r}: query names no metric: {expr}")
    check_queries_parse(queries, work)

    registered = registered_metrics(repo)
    pending_seen = []
    for name, places in sorted(used_metrics(repo).items()):
        base = base_name(name)
        if name in PROMETHEUS_SERIES:
            continue
        if base in CONTRACT_PENDING:
            if base in registered:
                problems.append(f"{base} is registered in src/ now: remove it from CONTRACT_PENDING "
                                f"in test/monitoring/monitoring_files.py")
            else:
                pending_seen.append(base)
            continue
        if base not in registered:
            problems.append(f"{name} ({', '.join(places)}) is not registered by any daemon in src/")

    used = {base_name(n) for n in used_metrics(repo)}
    for view, metric in REQUIRED_VIEWS.items():
        if base_name(metric) not in {base_name(m) for _, e in queries for m in metric_names(e)}:
            problems.append(f"dashboard: no panel shows {view} ({metric})")
    for p in problems:
        print(f"FAIL {p}")
    if problems:
        return 1
    print(f"grafana-dashboard.json: {len(queries)} queries over {len(used)} metrics, all registered by the daemons")
    if pending_seen:
        print(f"pending (agreed contract, not registered in src/ yet): {', '.join(sorted(set(pending_seen)))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
