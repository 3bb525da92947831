#!/usr/bin/env python3
"""TAILDIR -> file channel -> null (or file_roll) end to end: a file of LINES lines of LINE_BYTES
bytes (newline included) is renamed into the watched directory of a fresh agent; prints the
rate until the position file reaches its end. Usage:
  taildir_bench.py SLUICE_BIN LINES LINE_BYTES BATCH [null|file_roll]
Work directory: $TMPDIR/taildir-bench (removed and made again each run)."""
import os, sys, time, json, subprocess, shutil
bin_, lines, lb, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sink = sys.argv[5] if len(sys.argv) > 5 else "null"
W = os.path.join(os.environ.get("TMPDIR", "/tmp"), "taildir-bench")
shutil.rmtree(W, ignore_errors=True); os.makedirs(W + "/in"); os.makedirs(W + "/out")
src = W + "/src.log"
line = b"x" * (lb - 1) + b"\n"
with open(src, "wb") as f:
    for i in range(lines // 1000):
        f.write(line * 1000)
size = os.path.getsize(src)
sinkconf = "a.sinks.k1.type = null\na.sinks.k1.batchSize = 1000\n" if sink == "null" else f"a.sinks.k1.type = file_roll\na.sinks.k1.sink.directory = {W}/out\na.sinks.k1.sink.rollInterval = 0\na.sinks.k1.sink.batchSize = 1000\n"
conf = f"""a.sources = r1
a.channels = c1
a.sinks = k1
a.sources.r1.type = TAILDIR
a.sources.r1.filegroups = g
a.sources.r1.filegroups.g = {W}/in/.*\\.log
a.sources.r1.positionFile = {W}/pos.json
a.sources.r1.batchSize = {batch}
a.sources.r1.channels = c1
a.channels.c1.type = file
a.channels.c1.checkpointDir = {W}/cp
a.channels.c1.dataDirs = {W}/data
a.channels.c1.capacity = 100000000
a.channels.c1.transactionCapacity = {max(batch, 1000)}
a.sinks.k1.channel = c1
{sinkconf}"""
open(W + "/a.conf", "w").write(conf)
p = subprocess.Popen([bin_, "agent", "-n", "a", "-f", W + "/a.conf", "--log-level", "warn"], stdout=subprocess.DEVNULL)
time.sleep(1.0)
t0 = time.monotonic()
os.rename(src, W + "/in/a.log")
deadline = t0 + 600
while True:
    if time.monotonic() > deadline or p.poll() is not None:
        p.kill()
        sys.exit("the agent did not reach the end of the file (see its output above)")
    try:
        pos = json.load(open(W + "/pos.json"))
        if pos and pos[0]["pos"] >= size:
            break
    except Exception:
        pass
    time.sleep(0.002)
dt = time.monotonic() - t0
p.terminate(); p.wait()
print(f"taildir {lines} x {lb} B batch {batch} sink {sink}: {lines/dt:,.0f} ev/s")
