#!/usr/bin/env python3
"""Checks the layering of host/ from a build's object files (nm).

1. No circles between the files of a folder: file A depends on file B when
   A calls (or reads) a symbol B defines. A cycle of such dependencies
   inside one folder is reported, unless every file in it is listed in
   ALLOWED_CYCLES with the reason (recursion by design).
2. One internal prefix per part: every extern symbol a part defines
   starts with "stele_" (the part's interface) or with the part's own
   internal prefix (PREFIXES).

Usage: scripts/check-layers.py [--known FILE] BUILD_DIR
Exit 1 on a finding, unless FILE lists it (one finding per line, as this
script prints it; # starts a comment): the debts still to pay, so that a
new one fails while the old ones are paid off.
"""
import os
import subprocess
import sys

# Folder (relative to host/) -> the internal prefixes its extern symbols
# may have besides stele_.
PREFIXES = {
    "cli": ("cli_",),
    "codec": ("codec_",),
    "common": (),
    "config": ("cfg_",),
    "engine": ("engine_", "commands_", "projections_", "guard_", "worker_"),
    "log": ("log_",),
    "log/sqlite": ("lsq_",),
    "log/kafka": ("lk_",),
    "log/postgres": ("lpg_",),
    "open": (),
    "pgconn": (),
    "plugin": ("plugin_",),
    "registry": ("registry_",),
    "state": (),
    "store": ("store_",),
    "store/sqlite": ("ssq_",),
    "store/postgres": ("pg_",),
}

# Cycles that are the design, not an accident: the files and why.
ALLOWED_CYCLES = {
    frozenset({"codec/defaults.c", "codec/json.c"}):
        "a default is JSON, and JSON fills a record's missing fields "
        "from its defaults (recursion over nested records)",
}


def objects(build):
    """(source path relative to host/, object path) of every object of the
    build's host/ targets, from its compile_commands.json."""
    import json
    host = os.path.realpath(os.path.join(os.path.dirname(__file__), "..",
                                         "host"))
    with open(os.path.join(build, "compile_commands.json")) as f:
        for entry in json.load(f):
            src = os.path.realpath(entry["file"])
            if not src.startswith(host + os.sep):
                continue
            obj = entry.get("output")
            if not obj:
                args = entry["command"].split()
                obj = args[args.index("-o") + 1]
            yield (os.path.relpath(src, host),
                   os.path.join(entry["directory"], obj))


def symbols(obj):
    out = subprocess.run(["nm", obj], capture_output=True, text=True,
                         check=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            used.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBRC":
            defined.add(parts[2])
    return defined, used


def cycles(graph):
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    args = sys.argv[1:]
    known = set()
    if len(args) == 3 and args[0] == "--known":
        with open(args[1]) as f:
            known = {line.split("#")[0].strip() for line in f} - {""}
        args = args[2:]
    if len(args) != 1:
        sys.exit(__doc__)
    files = dict(objects(args[0]))
    if not files:
        sys.exit("check-layers: no host objects in %s" % args[0])
    findings = []
    defs, uses, owner = {}, {}, {}
    for src, obj in files.items():
        d, u = symbols(obj)
        defs[src], uses[src] = d, u
        for s in d:
            owner[s] = src
    graph = {}
    for src, used in uses.items():
        folder = os.path.dirname(src)
        graph[src] = {owner[s] for s in used
                      if s in owner and owner[s] != src
                      and os.path.dirname(owner[s]) == folder}
    for comp in cycles(graph):
        if frozenset(comp) in ALLOWED_CYCLES:
            continue
        findings.append("circle between the files of host/%s: %s" % (
            os.path.dirname(next(iter(comp))),
            ", ".join(sorted(os.path.basename(c) for c in comp))))
    for src, d in sorted(defs.items()):
        folder = os.path.dirname(src) or "."
        if folder == "." or folder == "cli":
            continue
        allowed = ("stele_",) + PREFIXES.get(folder, ())
        for s in sorted(d):
            if not s.startswith(allowed):
                findings.append("host/%s: extern %s has no prefix of its "
                                "part (%s)" % (src, s, ", ".join(allowed)))
    for f in findings:
        print(("known: " if f in known else "") + f)
    bad = [f for f in findings if f not in known]
    if bad:
        print("check-layers: %d new finding(s)" % len(bad))
        sys.exit(1)
    print("check-layers: %d files, %d known finding(s) left, none new" %
          (len(files), len(findings)))


if __name__ == "__main__":
    main()
