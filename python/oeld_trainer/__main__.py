"""The process the daemon starts (src/trainer/torch-trainer.ts, src/engine/torch-engine.ts):

  python -m oeld_trainer JOB.json     runs one round's job and reports on stdout, one JSON object a
                                      line (events ready, step, checkpoint, done; error before a
                                      non-zero exit). The daemon holds its stdin open and never
                                      writes to it: when it closes (the daemon stopped or died), the
                                      trainer exits, so no orphan keeps a GPU busy.
  python -m oeld_trainer engine [DEV]  the model engine (engine.py): requests on stdin, answers on
                                      stdout; it exits when stdin closes.
  python -m oeld_trainer --probe      the interpreter, torch and the CUDA devices, as JSON.
  python -m oeld_trainer serve [--host H] [--port P]
                                      the trainer at a URL (serve.py): jobs over HTTP, for a GPU host.
"""
import json
import os
import sys
import threading
import traceback

from . import JOB_VERSION


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()
    if obj.get("event") == "step":
        inject_fault(obj["step"])


def inject_fault(step):
    """OELD_TRAINER_TEST_FAULT=crash@N|hang@N|error@N: the fault the daemon's tests make the trainer
    suffer after step N (a kill as by the kernel's OOM killer, a hang, an exception)."""
    fault = os.environ.get("OELD_TRAINER_TEST_FAULT", "")
    if "@" not in fault or int(fault.split("@")[1]) != step:
        return
    kind = fault.split("@")[0]
    if kind == "crash":
        os.kill(os.getpid(), 9)
    if kind == "hang":
        import time

        time.sleep(86400)
    if kind == "error":
        raise RuntimeError(f"injected fault after step {step}")


def watch_parent():
    # The raw descriptor, not sys.stdin: a daemon thread blocked in a buffered read holds its lock,
    # and the interpreter aborts at exit when it cannot take it.
    try:
        while os.read(0, 65536):
            pass
    except Exception:
        pass
    sys.stderr.write("oeld_trainer: the daemon closed the pipe; stopping\n")
    sys.stderr.flush()
    os._exit(3)


def pick_device(torch, wanted):
    """The job's device; with several processes on one machine (LOCAL_RANK), "cuda" is the rank's own GPU."""
    if wanted in (None, "auto"):
        wanted = "cuda" if torch.cuda.is_available() else "cpu"
    if wanted.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device: {wanted} was asked for (OELD_TORCH_DEVICE) but torch sees no CUDA device")
    if wanted not in ("cpu", "cuda") and not wanted.startswith("cuda:"):
        raise ValueError(f"device: {wanted!r} is not auto, cpu, cuda or cuda:N")
    if wanted == "cuda" and "LOCAL_RANK" in os.environ:
        wanted = f"cuda:{int(os.environ['LOCAL_RANK'])}"
    device = torch.device(wanted)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def probe():
    import platform

    import torch

    devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    emit({"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.cuda.is_available(), "devices": devices})
    return 0


def run_engine(device_name):
    """python -m oeld_trainer engine [DEVICE]: the model engine (engine.py); it exits when stdin closes."""
    import torch

    from .engine import serve

    device = pick_device(torch, device_name)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    serve(device, emit)
    return 0


def main(argv):
    if argv[1:] == ["--probe"]:
        return probe()
    if len(argv) >= 2 and argv[1] == "serve":
        from .serve import serve

        return serve(argv[2:])
    if len(argv) >= 2 and argv[1] == "engine":
        return run_engine(argv[2] if len(argv) > 2 else "auto")
    if len(argv) != 2:
        sys.stderr.write("usage: python -m oeld_trainer JOB.json\n")
        return 2
    if os.environ.get("OELD_TRAINER_WATCH_STDIN", "1") == "1":
        threading.Thread(target=watch_parent, daemon=True).start()
    try:
        import torch

        with open(argv[1]) as f:
            job = json.load(f)
        if job.get("version") != JOB_VERSION:
            raise ValueError(f"job version: this trainer reads version {JOB_VERSION}, the job says {job.get('version')!r}")
        device = pick_device(torch, job.get("device"))
        # Some builds start with one thread on a machine of several (Debian's 1.13 does): every core
        # unless the job says, shared between the processes of a job on the CPU.
        processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        torch.set_num_threads(int(job.get("threads") or max(1, (os.cpu_count() or 1) // processes)))
        precision = job.get("precision") or ("bf16-autocast" if device.type == "cuda" else "float32")
        if precision not in ("float32", "bf16-autocast"):
            raise ValueError(f"precision: {precision!r} is not float32 or bf16-autocast")
        torch.manual_seed(int(job["options"]["seed"]))
        from .round import run_round

        run_round(job, device, precision, emit)
        return 0
    except Exception as e:  # reported to the daemon, which fails the round with it
        traceback.print_exc(file=sys.stderr)
        emit({"event": "error", "message": f"{type(e).__name__}: {e}"})
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
