#!/usr/bin/env python3
"""Checks the layering of host/ from a build's object files (nm).

1. No circles between the files of a folder: file A depends on file B when
   A calls (or reads) a symbol B defines. A cycle of such dependencies
   inside one folder is reported, unless every file in it is listed in
   ALLOWED_CYCLES with the reason (recursion by design).
2. One internal prefix per part: every extern symbol a part defines
   starts with "stele_" (the part's interface) or with the part's own
   internal prefix (PREFIXES).

Usage: scripts/check-layers.py BUILD_DIR   (exit 1 on a finding)
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
    "engine": ("engine_", "commands_", "projections_", "guard_"),
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
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    files = dict(objects(sys.argv[1]))
    if not files:
        sys.exit("check-layers: no object files under %s/host" % sys.argv[1])
    defs, uses, owner = {}, {}, {}
    for src, obj in files.items():
        d, u = symbols(obj)
        defs[src], uses[src] = d, u
        for s in d:
            owner[s] = src
    bad = 0
    graph = {}
    for src, used in uses.items():
        folder = os.path.dirname(src)
        graph[src] = {owner[s] for s in used
                      if s in owner and owner[s] != src
                      and os.path.dirname(owner[s]) == folder}
    for comp in cycles(graph):
        if frozenset(comp) in ALLOWED_CYCLES:
            continue
        bad += 1
        print("circle between the files of host/%s: %s" % (
            os.path.dirname(next(iter(comp))),
            ", ".join(sorted(os.path.basename(c) for c in comp))))
    for src, d in sorted(defs.items()):
        folder = os.path.dirname(src) or "."
        if folder == "." or folder == "cli":
            continue
        allowed = ("stele_",) + PREFIXES.get(folder, ())
        for s in sorted(d):
            if not s.startswith(allowed):
                bad += 1
                print("host/%s: extern %s has no prefix of its part (%s)" %
                      (src, s, ", ".join(allowed)))
    if bad:
        print("check-layers: %d finding(s)" % bad)
        sys.exit(1)
    print("check-layers: no circles, every extern prefixed (%d files)" %
          len(files))


if __name__ == "__main__":
    main()
