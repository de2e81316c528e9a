#!/usr/bin/python3
"""Reads the monitoring files (conf/monitoring/alerts.yml, grafana-dashboard.json) and the metric
names the daemons register in src/. Shared by check_alerts.py, check_dashboard.py and the
Prometheus integration test (which runs the CLI below).

    monitoring_files.py metrics REPO_ROOT    one line per metric the rules and the dashboard use:
                                             "<name> exported", "<name> on-event" or "<name> pending"
    monitoring_files.py queries REPO_ROOT    one line per dashboard query: "<panel title>\\t<expr>"
                                             ($__rate_interval and $__interval replaced by 1m)

"Pending" names are the ones in CONTRACT_PENDING: agreed in the shared metric contract and being
added to the daemons in parallel, not registered in src/ yet. check_dashboard.py fails once such a
name is registered (so this list only shrinks) and for any other name nobody registers.
"""

import json
import os
import re
import sys

import yaml

# Agreed names (COMMON.md "Shared contracts") that the broadcaster and relay engineers add.
# Remove a name here when its daemon registers it (check_dashboard.py says which).
CONTRACT_PENDING: set[str] = set()

# Registered, but with label values known only once the event happens (no series before): a
# healthy system does not export them, so the integration test cannot require them.
ON_EVENT = {
    "relay_publish_blocked",  # {topic,reason}: the first time the broker refuses a whole topic
}

# Series every Prometheus target has without the daemon registering anything.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
                "group_right", "inf", "nan", "atan2"}


def repo_path(root, *parts):
    return os.path.join(root, *parts)


def alert_rules(path):
    """[{alert, expr, for, labels, annotations}] of every alerting rule, in file order."""
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    rules = []
    for group in doc.get("groups", []):
        for rule in group.get("rules", []):
            if "alert" in rule:
                rules.append(rule)
    return rules


def dashboard_queries(path):
    """[(panel title, expr)] of every target of every panel (rows' nested panels included)."""
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    queries = []

    def walk(panels):
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    queries.append((panel.get("title", "?"), target["expr"]))
            walk(panel.get("panels", []))

    walk(doc.get("panels", []))
    return queries


def metric_names(expr):
    """Metric names a PromQL expression selects (label matchers, ranges, strings, grouping label
    lists, function names and keywords left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)                      # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)                     # ranges and subqueries
    text = re.sub(r"\$\w+", " ", text)                          # Grafana variables
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in PROMQL_WORDS:
            continue
        names.add(name)
    return names


def base_name(name):
    """relay_commit_to_ack_seconds_bucket -> relay_commit_to_ack_seconds (what src/ registers)."""
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def registered_metrics(root):
    """Metric names registered in src/: prometheus-cpp builders' .Name("x") and the daemons' small
    helpers called as counter(registry, "x", ...), gauge(...), histogram(...)."""
    pattern = re.compile(r'(?:\.Name|\bcounter|\bgauge|\bhistogram)\(\s*(?:[^,()"]*,\s*)?"([a-z_:][a-z0-9_:]*)"')
    names = set()
    for directory, _, files in os.walk(repo_path(root, "src")):
        for file in files:
            if file.endswith((".cpp", ".hpp")):
                with open(os.path.join(directory, file), encoding="utf-8") as f:
                    names.update(pattern.findall(f.read()))
    return names


def used_metrics(root):
    """{metric name: [where it is used]} over the alert rules and the dashboard."""
    used = {}
    for rule in alert_rules(repo_path(root, "conf", "monitoring", "alerts.yml")):
        for name in metric_names(rule["expr"]):
            used.setdefault(name, []).append(f"alert {rule['alert']}")
    for title, expr in dashboard_queries(repo_path(root, "conf", "monitoring", "grafana-dashboard.json")):
        for name in metric_names(expr):
            used.setdefault(name, []).append(f"panel {title!r}")
    return used


def main(argv):
    if len(argv) != 3 or argv[1] not in ("metrics", "queries"):
        print(__doc__, file=sys.stderr)
        return 2
    root = argv[2]
    if argv[1] == "metrics":
        for name in sorted(used_metrics(root)):
            base = base_name(name)
            state = "pending" if base in CONTRACT_PENDING else "on-event" if base in ON_EVENT else "exported"
            print(f"{name} {state}")
    else:
        for title, expr in dashboard_queries(repo_path(root, "conf", "monitoring", "grafana-dashboard.json")):
            expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "1m")
            print(f"{title}\t{' '.join(expr.split())}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
