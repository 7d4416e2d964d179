# py_driver.py: the driver of a Python execution context (helper/hd_ctx.c).
#
# sp-helperd starts it inside the sandbox as `python3 -u -c <this file>` and
# keeps it running for the life of the context. Protocol:
#   requests   one JSON object a line on the driver's stdin:
#              {"id": "exe_...", "code": "...", "timeout_ms": N}
#   frames     on the driver's stdout, nothing else: the byte 0x1e, one JSON
#              object, "\n". {"t":"stdout"|"stderr","b":<base64 bytes>},
#              {"t":"display","mime":..,"data":<base64>}, {"t":"result",
#              "data":{"text/plain":..}}, {"t":"error","name","message",
#              "traceback"}, {"t":"done","id":..,"count":N} (N: cells run
#              so far, E2B's execution count). A "result" is the value of
#              the cell's last expression (the main result); a "display" is
#              any other rich output (a figure).
# Descriptors: the request channel and the frame channel are moved to
# private (close-on-exec) descriptors; fd 0 becomes /dev/null and fds 1 and
# 2 become pipes that two threads read, so what the code and its
# subprocesses print is captured as stdout/stderr frames and never mixes
# with frames. Every frame is written under one lock; before "done" the
# main thread drains both pipes under that lock, so a run's output always
# precedes its "done".
# Interrupts: the helper sends SIGINT when a run times out or is
# cancelled; it becomes KeyboardInterrupt only while user code runs.
import ast
import base64
import builtins
import io
import json
import linecache
import os
import select
import signal
import sys
import threading
import traceback

CHUNK = 65536


class Driver:
    def __init__(self):
        self.lock = threading.RLock()
        self.req_fd = os.dup(0)
        self.frame_fd = os.dup(1)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        self.pipes = []
        for target in (1, 2):
            r, w = os.pipe()
            os.dup2(w, target)
            os.close(w)
            os.set_blocking(r, False)
            self.pipes.append(r)
        self.ns = {"__name__": "__main__", "__builtins__": builtins}
        self.cells = 0
        self.interruptible = False
        signal.signal(signal.SIGINT, self.on_sigint)
        for i, name in enumerate(("stdout", "stderr")):
            threading.Thread(target=self.pump, args=(i, name),
                             daemon=True).start()

    def on_sigint(self, signum, frame):
        # Only user code is interrupted, and only once per run.
        if self.interruptible:
            self.interruptible = False
            raise KeyboardInterrupt

    def send(self, obj):
        data = b"\x1e" + json.dumps(obj, separators=(",", ":")).encode() + \
            b"\n"
        with self.lock:
            view = memoryview(data)
            while view:
                try:
                    n = os.write(self.frame_fd, view)
                except InterruptedError:
                    continue
                except OSError:
                    os._exit(1)  # the helper is gone
                view = view[n:]

    def read_pipe(self, i, name):
        """One non-blocking read of pipe i sent as a frame; False at EOF
        or when nothing is there."""
        try:
            data = os.read(self.pipes[i], CHUNK)
        except (BlockingIOError, InterruptedError):
            return False
        if not data:
            return False
        self.send({"t": name, "b": base64.b64encode(data).decode()})
        return True

    def pump(self, i, name):
        p = select.poll()
        p.register(self.pipes[i], select.POLLIN)
        while True:
            p.poll()
            with self.lock:
                self.read_pipe(i, name)

    def drain(self):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        with self.lock:
            for i, name in enumerate(("stdout", "stderr")):
                while self.read_pipe(i, name):
                    pass

    def figures(self, value):
        """PNGs of open matplotlib figures (and of a figure that is the
        value); nothing when matplotlib was never imported."""
        plt = sys.modules.get("matplotlib.pyplot")
        figs = []
        try:
            if plt is not None:
                figs = [plt.figure(n) for n in plt.get_fignums()]
            if hasattr(value, "savefig") and value not in figs:
                figs.append(value)
            for fig in figs:
                buf = io.BytesIO()
                fig.savefig(buf, format="png", bbox_inches="tight")
                self.send({"t": "display", "mime": "image/png",
                           "data": base64.b64encode(buf.getvalue()).decode()})
            if plt is not None:
                plt.close("all")
        except Exception as exc:
            self.send({"t": "stderr", "b": base64.b64encode(
                ("could not render a figure: %r\n" % exc).encode()).decode()})

    def error(self, exc):
        # The cell's frames (and those of what it called), not the
        # driver's own.
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if f.filename != DRIVER_FILE]
        text = traceback.format_exception_only(type(exc), exc)
        if frames and not isinstance(exc, SyntaxError):
            text = ["Traceback (most recent call last):\n"] + \
                traceback.format_list(frames) + text
        self.send({"t": "error", "name": type(exc).__name__,
                   "message": str(exc), "traceback": "".join(text)})

    def run(self, req):
        code = req.get("code", "")
        self.cells += 1
        name = "<cell-%d>" % self.cells
        value = None
        failure = None
        try:
            tree = ast.parse(code, name, "exec")
            last = None
            if tree.body and isinstance(tree.body[-1], ast.Expr):
                last = ast.Expression(tree.body.pop().value)
            linecache.cache[name] = (len(code), None,
                                     code.splitlines(True), name)
            body = compile(tree, name, "exec")
            expr = compile(last, name, "eval") if last is not None else None
            self.interruptible = True
            exec(body, self.ns)
            if expr is not None:
                value = eval(expr, self.ns)
            self.interruptible = False
        except BaseException as exc:  # SystemExit and interrupts included
            self.interruptible = False
            failure = exc
        self.drain()
        if failure is None:
            self.figures(value)
            if value is not None and \
                    not type(value).__module__.startswith("matplotlib"):
                self.ns["_"] = value
                try:
                    text = repr(value)
                except BaseException as exc:
                    self.interruptible = False
                    failure = exc
                else:
                    self.send({"t": "result", "data": {"text/plain": text}})
        if failure is not None:
            self.error(failure)
        self.drain()
        self.send({"t": "done", "id": req.get("id"), "count": self.cells})

    def serve(self):
        with os.fdopen(self.req_fd, "rb") as requests:
            for line in requests:
                try:
                    req = json.loads(line)
                except ValueError:
                    continue
                if isinstance(req, dict):
                    try:
                        self.run(req)
                    except KeyboardInterrupt:
                        # An interrupt that landed in the driver itself.
                        self.send({"t": "done", "id": req.get("id")})


DRIVER_FILE = Driver.run.__code__.co_filename
os.environ.setdefault("MPLBACKEND", "Agg")
Driver().serve()
