#!/usr/bin/env python3
"""Render or lint a Helm chart offline with helm-python-sdk (Helm's Go SDK through ctypes; no helm binary).

    scripts/render_chart.py [CHART] [-f VALUES]... [--set K=V]... [--name R] [--namespace NS]
        Multi-document YAML on stdout, one `# Source: <template>` comment per document, templates in
        path order (what `helm template` prints). NOTES.txt is not printed.

    scripts/render_chart.py --lint [CHART]
        `helm lint --strict` (Helm's own linter, with values.schema.json) with the default values and with
        every values file in CHART/ci/*.yaml, and each of them rendered too. Exits 1 on any error.

Values files merge like Helm's -f (mappings key by key, later wins; lists and scalars replaced), then
--set expressions. The merged values are validated against the chart's values.schema.json before
rendering. Exit codes: 0 ok, 1 lint errors, 2 bad input or a render/schema error (message on stderr).
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
from typing import Any

try:
    import helm_python as helm
except ImportError as err:  # pragma: no cover - reported to the caller
    print(f"render_chart.py: helm_python is not installed ({err}); pip install helm-python-sdk", file=sys.stderr)
    sys.exit(3)

DEFAULT_CHART = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "charts", "regate")


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Helm's values-file coalescing: mappings merge recursively, everything else is replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_values(files: list[str], sets: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for path in files:
        with open(path, encoding="utf-8") as fh:
            values = merge(values, helm.values_from_yaml(fh.read()) or {})
    for expr in sets:
        values = merge(values, helm.parse_set_string(expr))
    return values


def render(chart_dir: str, values: dict[str, Any], name: str, namespace: str) -> str:
    """Validates `values` against the schema, renders, and returns the documents as one YAML stream."""
    with helm.Chart.load(chart_dir) as chart:
        chart.validate_schema(chart.merge_values(values))
        manifests = chart.render(values, name=name, namespace=namespace, is_install=True)
    docs: list[str] = []
    for template in sorted(manifests):
        if template.endswith("NOTES.txt"):
            continue
        for doc in re.split(r"(?m)^---[ \t]*$", manifests[template]):
            body = doc.strip("\n")
            if not body.strip() or all(
                not line.strip() or line.lstrip().startswith("#") for line in body.splitlines()
            ):
                continue
            docs.append(f"---\n# Source: {template}\n{body}\n")
    return "".join(docs)


def chart_yaml_problems(chart_dir: str) -> list[str]:
    with helm.Chart.load(chart_dir) as chart:
        meta = chart.metadata
    problems = [f"Chart.yaml: {field} is missing" for field in ("apiVersion", "name", "version", "appVersion", "description") if not meta.get(field)]
    if meta.get("apiVersion") != "v2":
        problems.append(f"Chart.yaml: apiVersion is {meta.get('apiVersion')!r}, want v2")
    return problems


def lint(chart_dir: str, name: str, namespace: str) -> int:
    cases: list[tuple[str, dict[str, Any]]] = [("(default values)", {})]
    for path in sorted(glob.glob(os.path.join(chart_dir, "ci", "*.yaml"))):
        cases.append((path, load_values([path], [])))
    errors = chart_yaml_problems(chart_dir)
    for label, values in cases:
        report = helm.lint(chart_dir, values, strict=True, namespace=namespace)
        for message in report.get("messages", []):
            severity = {1: "INFO", 2: "WARNING", 3: "ERROR"}.get(message.get("severity"), "UNKNOWN")
            line = f"{label}: [{severity}] {message.get('path')}: {message.get('error')}"
            print(line, file=sys.stderr)
            if message.get("severity", 0) >= 2:
                errors.append(line)
        errors.extend(f"{label}: {e}" for e in report.get("errors", []))
        try:
            render(chart_dir, values, name, namespace)
        except helm.HelmError as err:
            errors.append(f"{label}: render: {err}")
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    print(f"linted {len(cases)} value sets: {'FAILED' if errors else 'ok'}", file=sys.stderr)
    return 1 if errors else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chart", nargs="?", default=DEFAULT_CHART, help="chart directory (default: charts/regate)")
    parser.add_argument("-f", "--values", action="append", default=[], help="values file (repeatable)")
    parser.add_argument("--set", action="append", default=[], help="Helm --set expression (repeatable)")
    parser.add_argument("--name", default="regate", help="release name (default: regate)")
    parser.add_argument("-n", "--namespace", default="regate-system", help="release namespace (default: regate-system)")
    parser.add_argument("--lint", action="store_true", help="lint with defaults and ci/*.yaml instead of rendering")
    args = parser.parse_args(argv)
    try:
        if args.lint:
            return lint(args.chart, args.name, args.namespace)
        values = load_values(args.values, args.set)
        sys.stdout.write(render(args.chart, values, args.name, args.namespace))
        return 0
    except (helm.HelmError, OSError) as err:
        print(f"render_chart.py: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
