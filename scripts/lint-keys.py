#!/usr/bin/env python3
"""Prints "KEY FILE" for each source file given: a sha256 of everything that
decides what clang-tidy says about it (its compile command, the content of
the file and of every header it includes as the build's ninja recorded them,
.clang-tidy and clang-tidy's version). scripts/lint.sh skips a file whose key
it has seen pass before, like ccache does for compiles.

A file with no recorded dependencies (not built yet, or not in the build)
gets no key and is always checked.
    scripts/lint-keys.py BUILD_DIR TOOL_VERSION FILE...   (from the checkout's root)
"""
import hashlib
import json
import os
import shlex
import subprocess
import sys


def main():
    build_dir, tool_version, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    with open(os.path.join(build_dir, "compile_commands.json")) as f:
        commands = {os.path.realpath(entry["file"]): entry["command"] for entry in json.load(f)}
    with open(".clang-tidy", "rb") as f:
        config = f.read()
    contents = {}
    # Paths inside the checkout are keyed relative to it, so a clone
    # elsewhere (CI's) finds the keys this one left. ninja records a
    # dependency relative to the build folder when ccache's CCACHE_BASEDIR
    # made the compile command relative, absolute otherwise: both are made
    # absolute, then relative to the checkout.
    root = os.getcwd() + "/"
    build_abs = os.path.abspath(build_dir)

    def checkout_relative(path):
        path = os.path.normpath(os.path.join(build_abs, path))
        return path.removeprefix(root)

    def content_hash(path):
        if path not in contents:
            try:
                with open(path, "rb") as f:
                    contents[path] = hashlib.sha256(f.read()).hexdigest()
            except OSError:
                contents[path] = "missing"
        return contents[path]

    for name in files:
        command = commands.get(os.path.realpath(name))
        if command is None:
            print("- " + name)
            continue
        words = shlex.split(command)
        objects = [words[i + 1] for i, word in enumerate(words[:-1]) if word == "-o"]
        deps = subprocess.run(["ninja", "-C", build_dir, "-t", "deps", *objects],
                              capture_output=True, text=True).stdout.splitlines()
        # The first line names the object and says whether its deps are VALID.
        if not deps or "(VALID)" not in deps[0]:
            print("- " + name)
            continue
        key = hashlib.sha256()
        command = command.replace(root.rstrip("/"), "<checkout>")
        for part in (tool_version.encode(), config, command.encode()):
            key.update(hashlib.sha256(part).digest())
        for dep in deps[1:]:
            dep = dep.strip()
            if dep:
                path = os.path.normpath(os.path.join(build_abs, dep))
                key.update(f"{checkout_relative(dep)} {content_hash(path)}\n".encode())
        print(key.hexdigest() + " " + name)


if __name__ == "__main__":
    main()
