#!/usr/bin/python3
"""Checks conf/monitoring/alerts.yml with Debian's promtool.

    check_alerts.py REPO_ROOT WORK_DIR

1. `promtool check rules` on the file as shipped (syntax, PromQL, annotation templates).
2. Every alert has a severity label (critical | warning) and non-empty summary, description and
   runbook annotations.
3. Every alert has, in test/monitoring/alerts_test.yml, at least one evaluation where it fires and
   one where it stays silent.
4. `promtool test rules` runs those tests against a copy of the rules (in WORK_DIR) that keeps only
   the summary annotation: promtool compares annotations verbatim, and the long static texts are
   covered by 1 and 2.
5. conf/monitoring/prometheus.yml passes `promtool check config` (its rule_files pointed at this
   tree's alerts.yml) and defines every job the rules name in a job="..." matcher.
"""

import os
import re
import shutil
import subprocess
import sys

import yaml

from monitoring_files import alert_rules

problems = []


def promtool():
    path = shutil.which("promtool")
    if not path:
        problems.append("promtool not found: install Debian's prometheus package (scripts/setup)")
    return path


def run(argv):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    return result.returncode, (result.stdout + result.stderr).strip()


def check_annotations(rules):
    for rule in rules:
        name = rule["alert"]
        if rule.get("labels", {}).get("severity") not in ("critical", "warning"):
            problems.append(f"{name}: labels.severity must be critical or warning")
        for key in ("summary", "description", "runbook"):
            if not str(rule.get("annotations", {}).get(key, "")).strip():
                problems.append(f"{name}: annotation {key} is missing or empty")


def check_coverage(rules, tests):
    fires, silent = set(), set()
    for group in tests["tests"]:
        for case in group.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else silent).add(case["alertname"])
    for rule in rules:
        name = rule["alert"]
        if name not in fires:
            problems.append(f"{name}: no test in alerts_test.yml where it fires")
        if name not in silent:
            problems.append(f"{name}: no test in alerts_test.yml where it stays silent")
    known = {r["alert"] for r in rules}
    for name in sorted((fires | silent) - known):
        problems.append(f"alerts_test.yml tests {name}, which alerts.yml does not define")


def summary_only_copy(rules_path, target):
    with open(rules_path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "annotations" in rule:
                rule["annotations"] = {"summary": rule["annotations"].get("summary", "")}
    with open(target, "w", encoding="utf-8") as f:
        yaml.safe_dump(doc, f, sort_keys=False)


def check_scrape_config(tool, repo, work, rules):
    path = os.path.join(repo, "conf", "monitoring", "prometheus.yml")
    with open(path, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    jobs = {job["job_name"] for job in config.get("scrape_configs", [])}
    for rule in rules:
        for job in re.findall(r'job\s*=~?\s*"([^"]+)"', rule["expr"]):
            if job not in jobs:
                problems.append(f"{rule['alert']}: job {job!r} is not a job of prometheus.yml ({sorted(jobs)})")
    if not tool:
        return
    config["rule_files"] = [os.path.join(repo, "conf", "monitoring", "alerts.yml")]
    copy = os.path.join(work, "prometheus.yml")
    with open(copy, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    code, out = run([tool, "check", "config", copy])
    if code != 0:
        problems.append(f"promtool check config prometheus.yml:\n{out}")


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    repo, work = (os.path.abspath(a) for a in sys.argv[1:])
    rules_path = os.path.join(repo, "conf", "monitoring", "alerts.yml")
    tests_path = os.path.join(repo, "test", "monitoring", "alerts_test.yml")
    tool = promtool()
    if tool:
        code, out = run([tool, "check", "rules", rules_path])
        if code != 0:
            problems.append(f"promtool check rules:\n{out}")
    rules = alert_rules(rules_path)
    if not rules:
        problems.append(f"{rules_path}: no alerting rules")
    check_annotations(rules)
    with open(tests_path, encoding="utf-8") as f:
        tests = yaml.safe_load(f)
    check_coverage(rules, tests)
    if tool:
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        summary_only_copy(rules_path, os.path.join(work, "alerts.yml"))
        shutil.copy(tests_path, os.path.join(work, "alerts_test.yml"))
        code, out = run([tool, "test", "rules", os.path.join(work, "alerts_test.yml")])
        if code != 0:
            problems.append(f"promtool test rules:\n{out}")
    check_scrape_config(tool, repo, work, rules)
    for p in problems:
        print(f"FAIL {p}")
    if problems:
        return 1
    print(f"alerts.yml: {len(rules)} alerts checked, each tested firing and silent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
