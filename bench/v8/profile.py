#!/usr/bin/env python3
"""Summarises a `node --cpu-prof` profile of bench/v8/host.mjs: microseconds per request spent in
the module's own (Wasm) functions, and the functions that take most of it.

usage: profile.py <profile.cpuprofile> <requests run in total, warm-up included>"""
import collections
import json
import sys

profile = json.load(open(sys.argv[1]))
requests = int(sys.argv[2])
nodes = {n["id"]: n["callFrame"]["functionName"] for n in profile["nodes"]}
sample_us = (profile["endTime"] - profile["startTime"]) / len(profile["samples"])
# Rust symbols (mangled), the allocator and the ABI entry points: the module's code; the rest
# is this JavaScript host, V8 and Node.
WASM = ("_ZN", "_RN", "_RI", "dl", "malloc", "free", "mem", "proxy_on")
by_function = collections.Counter()
for node in profile["samples"]:
    name = nodes[node]
    if name.startswith(WASM):
        by_function[name] += 1
total = sum(by_function.values())
print(f"module code: {total * sample_us / requests:.2f} us per request (sampled every {sample_us:.0f} us)")
for name, n in by_function.most_common(25):
    print(f"{100 * n / total:5.1f}%  {name[:110]}")
