#!/usr/bin/python3
"""Converts the open SPF test suite (pyspf's rfc7208-tests.yml, license in
testdata/spf-suite.LICENSE) once into testdata/spf-suite.json, the form
src/lib-auth/test-spf-suite.c loads with jansson.

The zone semantics are those of pyspf's test driver (testspf.py):
- an "SPF" entry is also a TXT record unless the name has a TXT entry
  (the suite's "auto-magic duplication"); "TXT: NONE" only marks that;
- a TIMEOUT entry makes every type with no record before it time out
  (TEMPFAIL), records after it are never seen;
- TXT/SPF strings are joined without separator (RFC 7208 3.3).

Usage: scripts/spf-suite-convert.py rfc7208-tests.yml testdata/spf-suite.json
"""

import json
import sys

import yaml

TYPES = ["A", "AAAA", "MX", "PTR", "TXT", "SPF", "CNAME"]


def text(v):
    if isinstance(v, list):
        return "".join(v)
    return v


def zone(zonedata):
    out = []
    for name, entries in zonedata.items():
        recs = []  # (type, value) or "TIMEOUT", in order
        has_txt = False
        generated = []
        for e in entries:
            if e == "TIMEOUT":
                recs.append("TIMEOUT")
                continue
            ((t, v),) = e.items()
            if t == "TXT":
                has_txt = True
            elif t == "SPF":
                generated.append(("TXT", v))
            if v == "NONE":
                continue
            recs.append((t, v))
        if not has_txt:
            recs.extend(generated)
        tempfail = []
        for qtype in TYPES:
            seen = False
            for r in recs:
                if r == "TIMEOUT":
                    if not seen:
                        tempfail.append(qtype)
                    break
                if r[0] == qtype:
                    seen = True
        timeout_at = recs.index("TIMEOUT") if "TIMEOUT" in recs else len(recs)
        for r in recs[:timeout_at]:
            t, v = r
            if t in tempfail:
                continue
            if t in ("TXT", "SPF"):
                out.append({"name": name, "type": t, "data": text(v)})
            elif t == "MX":
                out.append({"name": name, "type": t, "data": v[1],
                            "preference": v[0]})
            else:
                out.append({"name": name, "type": t, "data": v})
        if tempfail:
            out.append({"name": name, "type": "TEMPFAIL",
                        "rrtypes": tempfail})
    return out


def main():
    src, dst = sys.argv[1], sys.argv[2]
    scenarios = []
    with open(src, encoding="utf-8") as f:
        for doc in yaml.safe_load_all(f):
            tests = []
            for tname, t in doc["tests"].items():
                result = t["result"]
                if not isinstance(result, list):
                    result = [result]
                case = {"name": tname, "spec": str(t.get("spec", "")),
                        "helo": t["helo"], "host": t["host"],
                        "mailfrom": t["mailfrom"], "result": result}
                if "explanation" in t:
                    case["explanation"] = t["explanation"]
                tests.append(case)
            scenarios.append({"description": doc["description"],
                              "zone": zone(doc.get("zonedata", {})),
                              "tests": tests})
    with open(dst, "w", encoding="utf-8") as f:
        json.dump({"source": "pyspf rfc7208-tests.yml (release 2014.04)",
                   "scenarios": scenarios}, f, indent=1, ensure_ascii=True)
        f.write("\n")


if __name__ == "__main__":
    main()
