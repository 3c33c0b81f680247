"""oeld's PyTorch trainer: runs a round's consolidation job (docs/trainer.md) that the daemon plans.

The daemon (TypeScript) owns the event log, extraction, gates and publication; this package owns
only the arithmetic of a round: it reads a job file, samples, scores, trains, and writes the new
weights. Reports go to stdout as JSON lines (protocol.py).
"""

JOB_VERSION = 1
