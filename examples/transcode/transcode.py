"""Transcodes the task's input file `audio` with sox, run by errand as a
command kind.

stdin: the payload, {"format": "ogg", "rate": 16000}.
$ERRAND_INPUT_DIR/audio: the input file. $ERRAND_OUTPUT_DIR: where the
output goes (errand stores it as the task's output file).
stderr: sox's own progress ("In:42.1%"), turned into progress lines.
stdout: the result, as JSON.
Exit 65 when the input can never be transcoded (not retried).
"""
import json
import os
import re
import subprocess
import sys

payload = json.load(sys.stdin)
fmt = payload.get("format", "ogg")
source = os.path.join(os.environ["ERRAND_INPUT_DIR"], "audio")
if not os.path.exists(source):
    print("the task has no input file named audio", file=sys.stderr)
    sys.exit(65)
target = os.path.join(os.environ["ERRAND_OUTPUT_DIR"], f"audio.{fmt}")

command = ["sox", "-S", "--type", "wav", source]
if "rate" in payload:
    command += ["-r", str(payload["rate"])]
command.append(target)
sox = subprocess.Popen(command, stderr=subprocess.PIPE)
pending = b""
last = -1.0
for chunk in iter(lambda: sox.stderr.read(512), b""):
    pending += chunk
    *lines, pending = re.split(rb"[\r\n]", pending)
    for line in lines:
        found = re.search(rb"In:(\d+(?:\.\d+)?)%", line)
        if found is None:
            if line.strip():
                print(line.decode(errors="replace"), file=sys.stderr, flush=True)
            continue
        done = float(found.group(1)) / 100
        if done - last >= 0.01:  # errand throttles too; this keeps stderr small
            last = done
            report = {"progress": done, "message": f"transcoding to {fmt}"}
            print(json.dumps(report), file=sys.stderr, flush=True)
status = sox.wait()
if status != 0:
    # sox: 1 means bad parameters or input file, 2 an error while processing.
    print(f"sox failed with status {status}", file=sys.stderr)
    sys.exit(65 if status in (1, 2) else status)

print(json.dumps({"format": fmt, "file": os.path.basename(target),
                  "bytes": os.path.getsize(target)}))
