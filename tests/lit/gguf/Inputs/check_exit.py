"""Runs `TOOL dump` on every .gguf file in a directory and checks that
each one fails the way a malformed file must: exit status exactly 1 (not a
crash, not another code), nothing on standard output, and exactly one line
on standard error, starting "moe-gguf: error: <file>: offset ".

    check_exit.py TOOL DIR   prints "N files: exit 1, one located error each"

TOOL is moe-gguf or moe-gguf-sanitized (the same tool built with
-fsanitize=address,undefined, where a sanitizer report ends the process
with another status).
"""
import os
import shutil
import subprocess
import sys

tool_name, directory = sys.argv[1], sys.argv[2]
tool = shutil.which(tool_name)
if tool is None:
    sys.exit(f"{tool_name} not found on PATH")
names = sorted(n for n in os.listdir(directory) if n.endswith(".gguf"))
problems = []
for name in names:
    path = os.path.join(directory, name)
    p = subprocess.run([tool, "dump", path], capture_output=True)
    err = p.stderr.decode("utf-8", "replace")
    if p.returncode != 1:
        problems.append(f"{name}: exit status {p.returncode}")
    if p.stdout:
        problems.append(f"{name}: wrote to standard output")
    if not err.startswith(f"moe-gguf: error: {path}: offset ") or err.count("\n") != 1:
        problems.append(f"{name}: unexpected standard error: {err!r}")
for problem in problems:
    print(problem)
print(f"{len(names)} files: " + ("exit 1, one located error each" if not problems else "FAILED"))
sys.exit(1 if problems else 0)
