"""A stand-in for a Whisper transcription, run by errand as a command kind.

stdin: the payload, {"audio_url": ..., "language": ..., "duration": ...}.
stderr: progress lines, {"progress": 0.4, "message": "..."}; other lines are log.
stdout: the result, as JSON.
Exit 0: done. Exit 65: the input can never work (not retried). Other: retried.
"""
import json
import os
import sys
import time

payload = json.load(sys.stdin)
language = payload.get("language", "en")
duration = payload.get("duration", 5)
segments = max(1, round(duration / 2))

print(f"model {os.environ.get('MODEL')} on attempt {os.environ['ERRAND_ATTEMPT']} "
      f"of task {os.environ['ERRAND_TASK_TOKEN']}", file=sys.stderr, flush=True)
if not payload["audio_url"].startswith(("http://", "https://")):
    print("only http(s) audio is supported", file=sys.stderr)
    sys.exit(65)

words = []
for i in range(segments):
    time.sleep(0.1 * duration / segments)  # the "model" at work
    words.append(f"segment{i + 1}")
    progress = {"progress": (i + 1) / segments, "message": f"segment {i + 1} of {segments}"}
    print(json.dumps(progress), file=sys.stderr, flush=True)

print(json.dumps({"language": language, "segments": segments, "text": " ".join(words)}))
