#!/usr/bin/env python3
"""Checks that the library's (and the command-line tool's) declared
`rust-version` is one they can build with,
as far as that can be told without that toolchain (no other toolchain can be
fetched in CI):

- every package the library depends on (normal dependencies, every feature,
  as Cargo.lock pins them) declares a `rust-version` at or below ours, or
  none;
- clippy's `incompatible_msrv` lint, which reads our `rust-version`, is run
  as an error over the library with every feature (standard-library items
  stabilised after it).

Language features stabilised after the declared version are not caught by
either; edition 2021 keeps out the largest group (the 2024 edition's).

Usage: python3 scripts/check-msrv.py   (from the repository root)
"""
import json
import subprocess
import sys


# The packages whose users build them: the library, and the command-line
# tool (`cargo install`). The benchmarks' package declares 1.89 for a peer.
ROOTS = ["wsstream", "wsstream-cli"]


def version(text):
    parts = [int(p) for p in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def main():
    meta = json.loads(
        subprocess.check_output(
            ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked"]
        )
    )
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    late = []
    for name in ROOTS:
        root = next(p for p in meta["packages"] if p["name"] == name)
        ours = version(root["rust_version"])
        deps = normal_dependencies(root["id"], nodes)
        for pid in sorted(deps, key=lambda i: packages[i]["name"]):
            pkg = packages[pid]
            declared = pkg.get("rust_version")
            if declared and version(declared) > ours:
                late.append(f'{name}: {pkg["name"]} {pkg["version"]} needs Rust {declared}')
        print(f"{name} (rust-version {root['rust_version']}): {len(deps)} dependencies checked")
    if late:
        print("dependencies that need a newer Rust than declared:", file=sys.stderr)
        for line in late:
            print("  " + line, file=sys.stderr)
        return 1

    lint = subprocess.run(
        ["cargo", "clippy", "-p", "wsstream", "-p", "wsstream-cli", "--lib", "--bins",
         "--all-features", "--locked", "--", "-D", "clippy::incompatible_msrv"]
    )
    return lint.returncode


def normal_dependencies(root, nodes):
    """The packages `root` builds with: normal and build dependencies,
    transitively (dev-dependencies are tests' and benches', not a user's)."""
    seen, stack = set(), [root]
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        for dep in nodes[pid]["deps"]:
            if {k["kind"] for k in dep["dep_kinds"]} & {None, "build"}:
                stack.append(dep["pkg"])
    return seen - {root}


if __name__ == "__main__":
    sys.exit(main())
