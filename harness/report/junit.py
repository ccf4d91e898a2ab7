"""``junit.xml``: the run's evidence as test results CI can display.

One ``testsuite`` per part the run folder holds: ``gate`` (one ``testcase`` per criterion), ``parity``
(one summary ``testcase``) and ``chaos`` (one ``testcase`` per scenario). A FAIL criterion, a
parity run with failing programs and a scenario whose Celery invariants were violated are
``failure``s; a scenario that could not be carried out is an ``error``; a known failure is ``skipped``
as pytest writes an xfail (``type="pytest.xfail"``, with its reason), so CI shows it as neither a
pass nor a failure; what could not be decided (INCONCLUSIVE, a scenario without an outcome) is
``skipped``, because unknown never passes. Chaos cases read the stored outcome words
(``harness.vocabulary``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

import pandas as pd

from harness.report.frames import Frames


def _suite(root: ET.Element, name: str, properties: Mapping[str, Any] | None = None) -> ET.Element:
    suite = ET.SubElement(root, "testsuite", name=name)
    if properties:
        props = ET.SubElement(suite, "properties")
        for key, value in properties.items():
            if value is not None:
                ET.SubElement(props, "property", name=key, value=str(value))
    return suite


def _case(suite: ET.Element, classname: str, name: str, *, failure: str | None = None, error: str | None = None,
          skipped: str | None = None, xfail: str | None = None, text: str = "", seconds: float = 0.0) -> None:
    case = ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{seconds:.3f}")
    if failure is not None:
        ET.SubElement(case, "failure", message=failure, type="FAIL").text = text or failure
    elif error is not None:
        ET.SubElement(case, "error", message=error, type="ERROR").text = text or error
    elif xfail is not None:
        ET.SubElement(case, "skipped", message=xfail, type="pytest.xfail")
    elif skipped is not None:
        ET.SubElement(case, "skipped", message=skipped)
    if text and failure is None and error is None:
        ET.SubElement(case, "system-out").text = text


def _count(element: ET.Element) -> None:
    cases = element.iter("testcase")
    tests = failures = errors = skipped = 0
    for case in cases:
        tests += 1
        failures += case.find("failure") is not None
        errors += case.find("error") is not None
        skipped += case.find("skipped") is not None
    element.set("tests", str(tests))
    element.set("failures", str(failures))
    element.set("errors", str(errors))
    element.set("skipped", str(skipped))


def render_junit(f: Frames) -> str:
    """The JUnit XML document as text (pure: no I/O)."""
    root = ET.Element("testsuites", name=f"harness run {f.data.run_id}")
    v = f.verdict
    if v:
        suite = _suite(root, "gate", {"verdict": v.get("verdict"), "headline": v.get("headline"),
                                      "current": v.get("current"), "target": v.get("target")})
        for c in f.criteria.to_dict("records"):
            text = (f"observed: {c['observed']}\nthreshold: {c['threshold']}\nsample size: {c['sample_size']}\n"
                    f"bound: {c['bound']}\ndetail: {c['detail']}")
            status = str(c["status"])
            _case(suite, "gate", str(c["name"]), text=text, failure=str(c["detail"]) if status == "FAIL" else None,
                  skipped=str(c["detail"]) if status not in ("PASS", "FAIL") else None)
    if f.has_parity:
        classes = f.parity_classes
        total, failing = int(classes["programs"].sum()), int(classes["failing"].sum())
        counts = ", ".join(f"{r['cls']} {r['programs']}" for r in classes.to_dict("records"))
        suite = _suite(root, "parity")
        message = None
        if failing:
            first = f.mismatch_samples.iloc[0].to_dict() if not f.mismatch_samples.empty else {}
            message = f"{failing} of {total} programs fail parity" + (
                f"; smallest: {first.get('code', '')!r}" if first else "")
        _case(suite, "parity", "parity summary", failure=message, text=f"{total} programs: {counts}")
    if f.has_chaos:
        suite = _suite(root, "chaos")
        for r in f.chaos_scenarios.to_dict("records"):
            outcome, detail = r["outcome"], str(r["detail"] or "")
            seconds = r.get("elapsed_s")
            _case(suite, "chaos", str(r["scenario"]), text=detail,
                  seconds=float(seconds) if seconds is not None and not pd.isna(seconds) else 0.0,
                  failure=f"Celery invariants violated: {detail}" if outcome == "failed" else None,
                  error=f"the scenario could not be carried out: {detail}" if outcome == "error" else None,
                  xfail=f"known failure: {detail}" if outcome == "known-failure" else None,
                  skipped=detail if outcome is None else None)
    for element in (*root.findall("testsuite"), root):
        _count(element)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
