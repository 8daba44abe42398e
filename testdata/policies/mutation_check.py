#!/usr/bin/env python3
"""Mutation check for the bundled policies: disables each deny/warn/patch rule in turn (inserting
`false` as its first expression) and runs `regate test` on the copy. Every rule must make some test fail,
so no rule can silently stop firing. Slow (one test run per rule); run after `cargo build`:

    python3 testdata/policies/mutation_check.py
"""
import pathlib, re, shutil, subprocess, sys, tempfile
ROOT = pathlib.Path(__file__).resolve().parents[2]
src = ROOT / 'policies'
work = pathlib.Path(tempfile.mkdtemp()) / 'policies'
survivors = []
total = 0
for f in sorted(src.glob('*/policy.rego')):
    text = f.read_text()
    lines = text.split('\n')
    starts = [i for i, l in enumerate(lines) if re.match(r'^(deny|warn|patch) contains .* if \{$', l)]
    for i in starts:
        total += 1
        if work.exists():
            shutil.rmtree(work)
        shutil.copytree(src, work)
        mutated = lines[:i+1] + ['\tfalse'] + lines[i+1:]
        (work / f.parent.name / 'policy.rego').write_text('\n'.join(mutated))
        r = subprocess.run([str(ROOT / 'target/debug/regate'), 'test', str(work), '--no-bundled', '-j', '2'], capture_output=True, text=True)
        if r.returncode == 0:
            survivors.append(f'{f.parent.name}:{i+1}: {lines[i][:90]}')
print(f'{total} rules mutated, {len(survivors)} survived')
for s in survivors: print('  SURVIVED', s)
sys.exit(1 if survivors else 0)
