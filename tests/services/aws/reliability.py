#!/usr/bin/env python3
"""reliability.py - check a run of `hypertest invoke` under injected faults.

    reliability.py RESULTS_JSON ENDPOINT_STATS_JSON N [SUMMARY_OUT]

ENDPOINT_STATS_JSON is the function's statistics from the endpoint that
injected the faults (endpoint.py's /_control/function/NAME "stats", or
bench/lambda-endpoint.c's /_stats): "invocations", "faults" {kind: count}
and "outcomes" {testId: [kind or "ok", ...] in the order they happened}.

Checks that the N tests are in the results file exactly once each, and
that each one's result is what its last invocation deserved: "ok" or
"slow" a pass (after retries or not); "garbage" a failure saying the
response is not JSON; "functionError" a failure naming the function
error; a fault worth a retry (throttle, server500, server503, reset,
truncated) only when the retries ran out, a failure saying after how many
attempts.  Every earlier invocation of a test must have been such a fault
(nothing else is retried), and the endpoint's count of each kind must
equal the kinds the outcomes list.  Prints the summary (also written to
SUMMARY_OUT); exits 1 on any violation.
"""
import json
import sys

RETRYABLE = ("throttle", "server500", "server503", "reset", "truncated")
KINDS = RETRYABLE + ("garbage", "slow", "functionError")


def main():
    res = json.load(open(sys.argv[1]))
    stats = json.load(open(sys.argv[2]))
    n = int(sys.argv[3])
    out = open(sys.argv[4], "w") if len(sys.argv) > 4 else None
    problems = []
    tests = res.get("testResults", [])
    outcomes = stats.get("outcomes", {})
    ids = [t.get("testId") for t in tests]
    names = [(t.get("context") or {}).get("id") for t in tests]
    if len(tests) != n:
        problems.append("%d results for %d tests" % (len(tests), n))
    if len(set(ids)) != len(ids):
        problems.append("%d test ids appear more than once" % (len(ids) - len(set(ids))))
    if len(set(names)) != len(names):
        problems.append("%d tests appear more than once" % (len(names) - len(set(names))))
    counted = {k: 0 for k in KINDS}
    for seq in outcomes.values():
        for k in seq:
            if k != "ok":
                counted[k] = counted.get(k, 0) + 1
    faults = stats.get("faults", {})
    for k in KINDS:
        if faults.get(k, 0) != counted[k]:
            problems.append("the endpoint counted %d %s faults, its outcomes list %d"
                            % (faults.get(k, 0), k, counted[k]))
    invocations = sum(len(s) for s in outcomes.values())
    if invocations != stats.get("invocations"):
        problems.append("%s invocations at the endpoint, %d with a test id"
                        % (stats.get("invocations"), invocations))
    passed = retried_ok = exhausted = 0
    failed = {"garbage": 0, "functionError": 0}
    lost = 0
    for t in tests:
        seq = outcomes.get(t.get("testId"))
        status = t.get("status")
        msg = (t.get("error") or {}).get("message", "")
        what = "%s (%s)" % ((t.get("context") or {}).get("id"), t.get("testId"))
        if not seq:
            problems.append("%s: never reached the endpoint, yet %s" % (what, status))
            lost += 1
            continue
        early = [k for k in seq[:-1] if k not in RETRYABLE]
        if early:
            problems.append("%s: retried after %s" % (what, ", ".join(early)))
        last = seq[-1]
        if last in ("ok", "slow"):
            ok = status == "success"
            passed += ok
            retried_ok += ok and len(seq) > 1
        elif last == "garbage":
            ok = status == "failed" and "not JSON" in msg
            failed["garbage"] += ok
        elif last == "functionError":
            ok = status == "failed" and "function error" in msg
            failed["functionError"] += ok
        else:
            ok = status == "failed" and "attempts" in msg
            exhausted += ok
        if not ok:
            problems.append("%s: outcomes %s at the endpoint, result %s: %s"
                            % (what, seq, status, msg[:200]))
    total_faults = sum(counted.values())
    lines = [
        "invocations: %d for %d tests; faults injected: %d (%.1f %% of invocations)"
        % (invocations, n, total_faults, 100.0 * total_faults / invocations if invocations else 0),
        "faults by kind (endpoint): " + ", ".join("%s %d" % (k, faults.get(k, 0)) for k in KINDS),
        "results: %d of %d tests accounted for exactly once: %d passed (%d of them retried to "
        "success), %d failed with the reason (garbage body %d, function error %d, retries "
        "exhausted %d); results lost: %d"
        % (len(set(ids)) if len(ids) == len(set(ids)) else 0, n, passed, retried_ok,
           failed["garbage"] + failed["functionError"] + exhausted, failed["garbage"],
           failed["functionError"], exhausted, lost + max(0, n - len(tests))),
        "results file: %s" % json.dumps(res.get("tests")),
    ]
    if problems:
        lines.append("PROBLEMS (%d):" % len(problems))
        lines += ["  " + p for p in problems[:50]]
    else:
        lines.append("every test accounted for: OK")
    text = "\n".join(lines)
    print(text)
    if out:
        out.write(text + "\n")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
