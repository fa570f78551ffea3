# Runs one submission inside the sandbox and reports observations; it never scores.
#
# Once started it prints "ready" (no nonce: nothing submitted has run yet). Then the Rust
# side sends one JSON job on stdin and reads lines "<nonce> <json>" on stdout, each written
# after a newline of its own (a submission's unfinished line cannot swallow a record):
#   {"kind": "rules", "ok": bool, "reason": str}
#   {"kind": "generated", "ok": bool, "calls": [[id, tagged steps]...], "reason": str}
#                                          (a reference run with generated inputs only)
#   {"kind": "module", "ok": bool, "reason": str}   before each phase when the module runs fresh
#   {"kind": "call", "id": str, "outcome": "returned"|"raised"|"timed_out",
#    "values": [tagged, one per step that returned], "error": str,
#    "watched": tagged first-step arguments after the call, "ms": float}
# A call is a list of steps (name, args, kwargs): the first calls the challenge's entry, each
# later one a method of what the first returned (a class with state). Inputs arrive tagged.
#   {"kind": "tampered", "reason": str}   the run is refused; nothing follows
#   {"kind": "end"}                        then the process exits with 0 at once
# Values are tagged so that Python types survive JSON exactly:
#   ["n"] None, ["b", bool], ["i", "digits"], ["f", "repr"], ["s", str],
#   ["z", [code points]] a str holding surrogates (JSON strings cannot carry them),
#   ["l", [...]] list, ["t", [...]] tuple, ["d", [[k, v], ...]] dict,
#   ["o", "type name"] anything else (not plain data; the scorer treats it as opaque).
# Every length cap comes from the job ("caps"); the Rust side owns them.
#
# Integrity: the submission runs in this interpreter, so the harness keeps what it must not
# lose out of its reach, and checks after every call that nothing it relies on was changed.
# - Every builtin and helper is bound when this file loads (closures of `_make_harness`),
#   before any submitted code runs; `__main__` keeps no harness names.
# - The submission's code runs below exactly two Python frames: the module frame (whose
#   names are `__main__`'s, empty of harness state) and `run_step`, which holds no secret.
#   The stages are chained with `map` (C code), so the frame that knows the nonce (`emit`)
#   is never on the stack while submitted code could run.
# - An audit hook (it cannot be removed) refuses, and reports as tampering, what would reach
#   the rest: gc's object walks (and importing gc), sys._current_frames, trace/profile hooks,
#   new audit hooks, ctypes, replacing a function's __code__, and frame access while the
#   harness itself runs; paths into /proc it refuses as "Permission denied", as Landlock does.
#   Automatic gc is off and every result is kept, so no finalizer runs in the harness's frames.
# - After each step, in `check` (which knows no nonce): the audit hook's findings, gc, every
#   signal handler (a foreign one is set to SIG_IGN before `emit` runs), `__main__`'s names
#   and the reachable harness functions' defaults, globals and closures; any change refuses
#   the run. The process exits with 0 right after its last record and skips the
#   interpreter's clean-up (and the submission's exit handlers).
#
# The fork server ("zygote", `--zygote CONFIG`): the interpreter, confined by the launcher, loads
# this file once and then serves jobs over the SOCK_SEQPACKET socket it has as stdin. Each job
# message ("J <id>") carries three descriptors (the job's input, its output and its stderr);
# the zygote forks a child per job and answers "S <id>" with the child's pidfd, then, once
# it has reaped the child, "E <id> <wait status> <CPU microseconds>". The zygote never runs
# submitted code: the child first confines itself further (own process group, parent-death
# signal, its own rlimits, not dumpable, a Landlock layer that writes nothing and signals no
# one outside it, a seccomp filter the server compiled), forgets ctypes, and only then runs
# the grading below exactly as a single run would, with the job on fd 0 and records on fd 1.
# Without --zygote (a single run): it sets up, prints "ready", and blocks reading the job.
# Start-up is kept lean because every submission gets a new interpreter: Python runs with -S
# (site's .pth files are the slowest part of start-up), and this file loads the C modules
# `_ast`, `_json` and `_signal` rather than `ast`, `json` and `signal`, whose Python layers
# import `re`, `enum`, `contextlib` and more: about 10 ms of CPU for every submission.


def _make_harness(main_globals):
    import sys
    import time

    import _ast
    import _signal
    import gc
    from posix import _exit
    from posix import write as _fd_write

    try:
        from _json import encode_basestring_ascii as _quote
        from _json import make_scanner as _make_scanner
    except ImportError:  # an interpreter without the C accelerator: the same, in Python
        from json.encoder import py_encode_basestring_ascii as _quote
        from json.scanner import py_make_scanner as _make_scanner

    # Bound now: later lookups would see whatever the submission put in builtins.
    _type = type
    _len = len
    _str = str
    _int = int
    _float = float
    _bool = bool
    _list = list
    _tuple = tuple
    _dict = dict
    _NoneType = type(None)
    _repr = repr
    _isinstance = isinstance
    _getattr = getattr
    _callable = callable
    _round = round
    _map = map
    _ord = ord
    _zip = zip
    _set = set
    _compile = compile
    _exec = exec
    _BaseException = BaseException
    _Exception = Exception
    _SystemExit = SystemExit
    _OSError = OSError
    _bytes = bytes
    _range = range
    _UnicodeError = UnicodeError
    _RuntimeError = RuntimeError
    _SyntaxError = SyntaxError
    _ImportError = ImportError
    _RecursionError = RecursionError
    _dict_items = dict.items
    _dict_get = dict.get
    _list_append = list.append
    _join = ", ".join
    _concat = "".join
    _perf = time.perf_counter
    _setitimer = _signal.setitimer
    _getsignal = _signal.getsignal
    _setsignal = _signal.signal
    _SIG_IGN = _signal.SIG_IGN
    _ITIMER_REAL = _signal.ITIMER_REAL
    _ITIMERS = (_signal.ITIMER_REAL, _signal.ITIMER_VIRTUAL, _signal.ITIMER_PROF)
    _SIGNALS = _tuple(sorted(_signal.valid_signals()))
    _AST = _ast.AST
    _gc_disable = gc.disable
    _gc_freeze = gc.freeze
    _gc_isenabled = gc.isenabled
    _getrecursionlimit = sys.getrecursionlimit
    _setrecursionlimit = sys.setrecursionlimit
    _addaudithook = sys.addaudithook
    _stdin = sys.stdin
    _sys = sys
    _name_of_type = type.__dict__["__name__"].__get__
    _chr = chr
    _import = __import__
    _modules_get = sys.modules.get

    class _CallTimeout(BaseException):
        pass

    class _Sink:
        """Stands in for stdout/stderr while submitted code runs: keeps nothing."""

        def write(self, text):
            return _len(text)

        def flush(self):
            pass

        def isatty(self):
            return False

    class _JsonSettings:
        """What json.loads would use: plain dicts, floats, ints; NaN and Infinity as floats."""

        strict = True
        object_hook = None
        object_pairs_hook = None
        parse_float = float
        parse_int = int
        parse_constant = float
        memo = {}

    _scan = _make_scanner(_JsonSettings())

    # --- the audit hook: what the submission may not do, and what it tried -----------------

    # [harness running (frames are off limits), first refused event or None]
    audit = [False, None]
    refused_always = frozenset((
        "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames",
        "sys.settrace", "sys.setprofile", "sys.addaudithook", "sys.monitoring.register_callback",
        "sys._setprofileallthreads", "sys._settraceallthreads", "sys.remote_exec",
        "_thread.start_new_thread",  # audited from Python 3.13; seccomp refuses threads anyway
    ))
    refused_imports = frozenset(("gc", "ctypes", "_ctypes", "_testcapi", "_testinternalcapi", "_testbuffer"))
    path_events = frozenset(("open", "os.symlink", "os.link", "os.chdir", "os.listdir", "os.scandir"))
    frame_attributes = frozenset(("tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_code", "f_back"))

    def reads_own_memory(path, _type=_type, _str=_str, _bytes=bytes):
        """A path into /proc (the process's memory, maps, fds): Landlock refuses it where it
        runs; this refuses the plain spellings everywhere (links to it, and changing into it).
        Path-like objects are not asked (that would run their code here)."""
        if _type(path) is _bytes:
            path = path.decode("latin-1")
        if _type(path) is not _str:
            return None
        if "/proc" in path or path[:4] == "proc" or "/dev/fd" in path or path[-3:] == "mem":
            return path
        return None

    def on_audit(event, args, audit=audit, refused_always=refused_always, refused_imports=refused_imports,
                 frame_attributes=frame_attributes, _type=_type, _str=_str, _RuntimeError=_RuntimeError,
                 reads_own_memory=reads_own_memory, path_events=path_events, _PermissionError=PermissionError):
        if event in path_events and reads_own_memory(args[0]) is not None:
            # Refused as the kernel would (Landlock does where it runs): not called tampering,
            # so probing the sandbox stays a submission's own business.
            raise _PermissionError(13, "Permission denied", reads_own_memory(args[0]))
        if event in refused_always or event[:7] == "ctypes.":
            what = "it used " + event
        elif event == "import" and _type(args[0]) is _str and args[0] in refused_imports:
            what = "it imported " + args[0]
        elif event == "object.__setattr__" and _type(args[1]) is _str and args[1] == "__code__":
            what = "it replaced a function's code"
        elif audit[0] and (event == "sys._getframe" or (
                event == "object.__getattr__" and _type(args[1]) is _str and args[1] in frame_attributes)):
            what = "it looked at the grader's frames"
        else:
            return
        if audit[1] is None:
            audit[1] = what
        raise _RuntimeError("not allowed while grading: " + event)

    # --- encoding records -------------------------------------------------------------------

    def encode(value):
        """JSON as json.dumps writes it, for the values records hold (ASCII only)."""
        kind = _type(value)
        if kind is _str:
            return _quote(value)
        if kind is _list:
            return "[" + _join([encode(v) for v in value]) + "]"
        if kind is _dict:
            return "{" + _join([_quote(k) + ": " + encode(v) for k, v in _dict_items(value)]) + "}"
        if value is None:
            return "null"
        if value is True:
            return "true"
        if value is False:
            return "false"
        return _repr(value)  # the harness's own ints and finite floats

    def has_surrogates(text):
        if text.isascii():
            return False
        try:
            text.encode("utf-8")  # "strict" is built in: no codec registry involved
        except _UnicodeError:
            return True
        return False

    def plain_text(text, cap):
        """`text` cut to `cap` characters, surrogates written as \\udxxx (for messages)."""
        text = text[:cap]
        if has_surrogates(text):
            text = _concat(["\\u%04x" % _ord(c) if 0xD800 <= _ord(c) <= 0xDFFF else c for c in text])
        return text

    caps = {}  # from the job

    def tag(value, depth, budget):
        budget[0] -= 1
        if budget[0] < 0 or depth > caps["depth"]:
            return ["o", "value too large or too deep"]
        kind = _type(value)
        if value is None:
            return ["n"]
        if kind is _bool:
            return ["b", value]
        if kind is _int:
            try:
                return ["i", _str(value)]
            except _Exception:
                return ["o", "int too large"]
        if kind is _float:
            return ["f", _repr(value)]
        if kind is _str:
            if _len(value) > caps["str"]:
                return ["o", "str too long"]
            if has_surrogates(value):
                return ["z", _list(_map(_ord, value))]
            return ["s", value]
        if kind is _list:
            return ["l", [tag(v, depth + 1, budget) for v in value]]
        if kind is _tuple:
            return ["t", [tag(v, depth + 1, budget) for v in value]]
        if kind is _dict:
            return ["d", [[tag(k, depth + 1, budget), tag(v, depth + 1, budget)] for k, v in _dict_items(value)]]
        return ["o", type_name(kind)]

    def untag(value):
        """The inverse of `tag`, for the job's inputs (harness data: no submitted code runs)."""
        kind = value[0]
        if kind == "n":
            return None
        if kind == "b" or kind == "s":
            return value[1]
        if kind == "i":
            return _int(value[1])
        if kind == "f":
            return _float(value[1])
        if kind == "z":
            return _concat(_map(_chr, value[1]))
        if kind == "l":
            return [untag(v) for v in value[1]]
        if kind == "t":
            return _tuple([untag(v) for v in value[1]])
        if kind == "d":
            return {untag(k): untag(v) for k, v in value[1]}
        raise _RuntimeError("bad input tag")

    def type_name(kind):
        # type's own descriptor: a metaclass cannot run code here or lie about the name
        name = _name_of_type(kind)
        if _type(name) is not _str:
            return "object"
        return plain_text(name, caps["name"])

    def describe(exc):
        name = type_name(_type(exc))
        try:
            text = _str(exc)
        except _BaseException:
            text = ""
        if _type(text) is not _str:
            text = ""
        text = plain_text(text, caps["error"])
        return name + (": " + text if text else "")

    def on_alarm(signum, frame):
        raise _CallTimeout()

    # --- the rules (before any submitted code runs) ------------------------------------------

    def rule_broken(node, rules):
        """The first rule `node` itself breaks (its children are checked separately), or None."""
        kind = _type(node)
        imports = rules["imports"]
        if kind is _ast.Import:
            for alias in node.names:
                # The whole dotted name: `import dateutil.parser` is not `import dateutil`.
                if alias.name not in imports:
                    return "import of '%s' is not allowed" % alias.name
        elif kind is _ast.ImportFrom:
            module = node.module or ""
            top = module.split(".")[0]
            if node.level or top not in imports:
                return "import from '%s' is not allowed" % ("." * node.level + module)
            for alias in node.names:
                if alias.name == "*":
                    return "'from %s import *' is not allowed" % module
                if alias.name not in imports[top]:
                    return "importing '%s' from '%s' is not allowed" % (alias.name, module)
        elif kind is _ast.Call:
            func = node.func
            if _type(func) is _ast.Name and func.id in rules["forbidden_calls"]:
                return "calling %s() is not allowed" % func.id
            if _type(func) is _ast.Attribute and func.attr in rules["forbidden_methods"]:
                return "calling .%s() is not allowed" % func.attr
        elif kind is _ast.Attribute:
            if node.attr in rules["forbidden_attributes"]:
                return "the attribute %s is not allowed" % node.attr
        return None

    def check_rules(code, rules):
        try:
            tree = _compile(code, "submission.py", "exec", _ast.PyCF_ONLY_AST)
        except _SyntaxError as exc:
            return "not valid Python: %s (line %s)" % (exc.msg, exc.lineno)
        except _RecursionError:
            return "the code is nested too deeply to check"
        except _BaseException as exc:
            return "not valid Python: %s" % describe(exc)
        rules = {
            "imports": {module: _set(names) for module, names in _dict_items(rules["imports"])},
            "forbidden_calls": _set(rules["forbidden_calls"]),
            "forbidden_methods": _set(rules["forbidden_methods"]),
            "forbidden_attributes": _set(rules["forbidden_attributes"]),
        }
        # Depth first, each node before its children, in source order: the first problem found
        # is the first in the code. A stack, not recursion, so deep nesting cannot stop the check.
        pending = [tree]
        while pending:
            node = pending.pop()
            problem = rule_broken(node, rules)
            if problem is not None:
                return "line %d: %s" % (_getattr(node, "lineno", 0), problem)
            children = []
            for field in node._fields:
                child = _getattr(node, field, None)
                if _isinstance(child, _AST):
                    children.append(child)
                elif _type(child) is _list:
                    children.extend([c for c in child if _isinstance(c, _AST)])
            children.reverse()
            pending.extend(children)
        return None

    # --- running the submission: no secret in reach -----------------------------------------

    # [code, entry name, module timeout, call timeout, the entry once defined, the namespace a
    # fresh module starts from]
    run = [None, None, 0.0, 0.0, None, None]
    namespace = {}

    def run_step(step, run=run, namespace=namespace):
        """Runs one step of the submission: (record, returned value, input to look at after).
        Values are tagged later, out of the submission's reach."""
        if step is None:
            return ({"kind": "end"}, None, None)
        if step is run:
            return (run_module(run, namespace), None, None)
        return run_call(run[4], step, run[3])

    def run_module(run, namespace, _setitimer=_setitimer, _exec=_exec, _compile=_compile):
        namespace.clear()
        namespace.update(run[5])
        _setitimer(_ITIMER_REAL, run[2])
        try:
            _exec(_compile(run[0], "submission.py", "exec"), namespace)
            _setitimer(_ITIMER_REAL, 0)
            function = _dict_get(namespace, run[1])
            if function is None or not _callable(function):
                return {"kind": "module", "ok": False, "reason": "the code does not define %s()" % run[1]}
        except _CallTimeout:
            return {"kind": "module", "ok": False, "timed_out": True, "reason": "running the module took too long"}
        except _BaseException as exc:
            _setitimer(_ITIMER_REAL, 0)
            return {"kind": "module", "ok": False, "reason": "running the module raised %s" % describe(exc)}
        run[4] = function
        return {"kind": "module", "ok": True, "reason": None}

    def run_call(function, spec, limit, _setitimer=_setitimer, _perf=_perf, _CallTimeout=_CallTimeout,
                 _BaseException=_BaseException, _getattr=_getattr, _list_append=_list_append):
        steps = spec["steps"]
        values = []
        error = None
        started = _perf()
        _setitimer(_ITIMER_REAL, limit)
        try:
            first = steps[0]
            _list_append(values, function(*first[1], **first[2]))
            for step in steps[1:]:
                _list_append(values, _getattr(values[0], step[0])(*step[1], **step[2]))
            _setitimer(_ITIMER_REAL, 0)
            outcome = "returned"
        except _CallTimeout:
            _setitimer(_ITIMER_REAL, 0)
            outcome = "timed_out"
        except _BaseException as exc:
            _setitimer(_ITIMER_REAL, 0)
            outcome = "raised"
            error = describe(exc)
        record = {"kind": "call", "id": spec["id"], "outcome": outcome,
                  "ms": _round((_perf() - started) * 1000, 3)}
        if error is not None:
            record["error"] = error
        watched = steps[0][1] if spec["watch"] and outcome != "timed_out" else None
        return (record, values, watched)

    # --- checking, then writing: only here is the nonce known -------------------------------

    # What the submission could reach and change; kept as it is before the submission runs.
    guarded = (run_step, run_module, run_call, describe, type_name, plain_text, has_surrogates, on_alarm)

    def state_now():
        """A flat list of every object the harness relies on, compared by identity."""
        state = []
        for function in guarded:
            # (`__code__` is not read here: replacing it is refused by the audit hook.)
            state += [function, function.__defaults__, function.__kwdefaults__, function.__globals__]
            state += [cell.cell_contents for cell in function.__closure__ or ()]
        for key, value in _dict_items(main_globals):
            state += [key, value]
        for key, value in _dict_items(caps):
            state += [key, value]
        return state

    def tampering(before, handlers, recursion_limit):
        """What the submission changed in the harness, or None; also takes back what it set up
        to run later (a handler it installed would run, with the harness's frame, at the next
        signal)."""
        audit[0] = True  # from here until the next step, frames are off limits
        was_enabled = _gc_isenabled()
        _gc_disable()
        if _getrecursionlimit() < recursion_limit:  # lowered, the harness itself could fail
            _setrecursionlimit(recursion_limit)
        for which in _ITIMERS:
            _setitimer(which, 0)
        foreign = False
        for signum, was, now in _zip(_SIGNALS, handlers, _map(_getsignal, _SIGNALS)):
            if now is not was:
                _setsignal(signum, _SIG_IGN)
                foreign = True
        if audit[1] is not None:
            return audit[1]
        if was_enabled:
            return "it turned garbage collection back on"
        if foreign:
            return "it installed a signal handler"
        now = state_now()
        if _len(now) != _len(before):
            return "it changed the grader's state"
        for x, y in _zip(now, before):
            if x is not y:
                return "it changed the grader's state"
        return None

    armed = []  # [state, signal handlers], taken just before the submission runs
    kept = []  # every step's result: nothing it returned is freed (no finalizer runs) from here on

    def arm():
        armed[:] = [state_now(), [_getsignal(s) for s in _SIGNALS]]

    def check(result, recursion_limit=_getrecursionlimit()):
        """(what was tampered with or None, the step's result). Knows no nonce: a signal the
        submission arranged may still arrive here, before `tampering` takes its handler back."""
        _list_append(kept, result)
        return (tampering(armed[0], armed[1], recursion_limit), result)

    def make_writer(nonce):
        prefix = "\n" + nonce + " "

        def write(record):
            data = (prefix + encode(record) + "\n").encode("ascii")
            while data:
                data = data[_fd_write(1, data):]

        def emit(checked):
            """Writes one step's record. No submitted code can run from here on: no handler of
            its is left, gc is off, and tagging only looks at exact built-in types."""
            problem, (record, values, watched) = checked
            if problem is not None:
                write({"kind": "tampered", "reason": plain_text(problem, caps["error"])})
                _exit(0)
            if record["kind"] == "call":
                budget = [caps["nodes"]]
                if record["outcome"] != "timed_out":
                    record["values"] = [tag(v, 0, budget) for v in values]
                if watched is not None:
                    record["watched"] = tag(watched, 0, budget)
            write(record)
            kind = record["kind"]
            if kind == "end" or (kind == "module" and not record["ok"]):
                _exit(0)
            audit[0] = False

        return write, emit

    def generate(generator, phases, write):
        """A reference run's inputs, drawn by the challenge's generator.py (organizer code, run
        before the reference and never with a submission) from a seed per grading."""
        import random

        space = {"__name__": "generator", "__builtins__": main_globals["__builtins__"]}
        made = []
        try:
            _exec(_compile(generator["code"], "generator.py", "exec"), space)
            for phase in phases:
                for spec in phase:
                    if "generate" not in spec:
                        continue
                    rng = random.Random("%s:%s" % (generator["seed"], spec["id"]))
                    call = space[spec["generate"]](rng)
                    steps = []
                    for step in call:
                        step = _tuple(step)
                        name, args = step[0], _tuple(step[1])
                        kwargs = _dict(step[2]) if _len(step) > 2 else {}
                        if _type(name) is not _str:
                            raise _RuntimeError("a step's name must be a str")
                        steps.append((name, args, kwargs))
                    if not steps:
                        raise _RuntimeError("%s() returned no step" % spec["generate"])
                    made.append([spec["id"], tag(steps, 0, [caps["nodes"]])])
                    # The reference gets its own copy: what it does to its arguments stays its own.
                    spec["steps"] = [(n, untag(tag(a, 0, [caps["nodes"]])), untag(tag(k, 0, [caps["nodes"]])))
                                     for n, a, k in steps]
        except _BaseException as exc:
            write({"kind": "generated", "ok": False, "reason": describe(exc)})
            _exit(0)
        write({"kind": "generated", "ok": True, "calls": made})

    def prepare():
        """Reads the job, checks the rules, and returns the run: an iterator that the module
        frame drains, each item one step through `run_step`, `check` and `emit`."""
        del main_globals["_harness"]
        data = _stdin.buffer.read()
        _stdin.close()
        if not data:
            _exit(0)  # never used: the server closed the pipe (shutting down, or a spare)
        job = _scan(data.decode("utf-8"), 0)[0]
        if "script" in job:
            run_bare(job["script"])
        caps.update(job["caps"])
        write, emit = make_writer(job["nonce"])
        del job["nonce"], data

        problem = check_rules(job["code"], job["rules"])
        write({"kind": "rules", "ok": problem is None, "reason": problem})
        if problem is not None:
            _exit(0)

        rules = job["rules"]
        base = {"__name__": rules["module_name"], "__builtins__": main_globals["__builtins__"]}
        for name in rules["prebound"]:
            try:
                _import(name)  # the fork server has loaded them already: a lookup
                base[name] = _modules_get(name)
            except _BaseException:
                pass  # not installed: the name stays unbound, as an import would fail
        run[:6] = [job["code"], job["entry"], job["module_timeout_s"], job["call_timeout_s"], None, base]
        phases = job["phases"]
        for phase in phases:
            for spec in phase:
                if "steps" in spec:
                    spec["steps"] = [(name, untag(args), untag(kwargs)) for name, args, kwargs in spec["steps"]]
        if job.get("generator") is not None:
            generate(job["generator"], phases, write)
        _setsignal(_signal.SIGALRM, on_alarm)
        sink = _Sink()
        _sys.stdout = sink
        _sys.stderr = sink
        steps = [run]
        for phase in phases:
            if steps[-1] is not run and rules["fresh_module_per_phase"]:
                steps.append(run)
            steps += phase
        steps.append(None)
        del job, phases
        _addaudithook(on_audit)
        _gc_disable()
        arm()
        return _map(emit, _map(check, _map(run_step, steps)))

    def run_bare(script):
        """Tests only (the server never sends one): runs a script as a bare child, confined by
        the OS layers alone, with no rules, audit hook or harness around it, printing to fd 1."""
        namespace = {"__name__": "__main__", "__builtins__": main_globals["__builtins__"]}
        caps["name"], caps["error"] = 200, 2000
        code = 0
        try:
            _exec(_compile(script, "script.py", "exec"), namespace)
        except _SystemExit as exc:
            code = exc.code if _type(exc.code) is _int else 1
        except _BaseException as exc:
            _fd_write(2, describe(exc).encode("utf-8", "backslashreplace"))
            code = 1
        for stream in (_sys.stdout, _sys.stderr):
            try:
                stream.flush()
            except _BaseException:
                pass
        _exit(code)

    def zygote(config):
        """The fork server: serves jobs until the server closes the socket. Returns only in a
        child, confined further, with its job's descriptors as 0, 1 and 2."""
        import _socket
        import ctypes
        import resource
        import select
        from posix import close, closerange, dup2, fork, getpid, getppid, pidfd_open, setpgid, wait4

        config = _scan(config, 0)[0]
        # What the challenges bind or allow, and the generators' `random`: loaded once here, so
        # a child finds them in sys.modules instead of reading and running them again.
        for name in config["preload"]:
            try:
                _import(name)
            except _ImportError:
                pass
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
        syscall = libc.syscall
        program = _bytes.fromhex(config["filter"])
        program_buffer = ctypes.create_string_buffer(program, _len(program))

        class SockFprog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        fprog = SockFprog(_len(program) // 8, ctypes.addressof(program_buffer))
        fprog_pointer = ctypes.byref(fprog)
        create_ruleset, restrict_self = config["landlock_create_ruleset"], config["landlock_restrict_self"]
        abi = syscall(create_ruleset, None, 0, 1)  # LANDLOCK_CREATE_RULESET_VERSION
        # Write-like file system rights, by ABI: executing, writing, removing and making any
        # kind of file (1), re-parenting (2), truncating (3); with no rule, all are denied.
        handled = 0b1_1111_1111_0011
        if abi >= 2:
            handled |= 1 << 13
        if abi >= 3:
            handled |= 1 << 14

        class RulesetAttr(ctypes.Structure):
            _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

        # Scoped (6): no signal to, and no abstract unix socket of, any process outside it.
        attr = RulesetAttr(handled, 0, 0b11 if abi >= 6 else 0)
        attr_size = 24 if abi >= 6 else (16 if abi >= 4 else 8)
        attr_pointer = ctypes.byref(attr)
        limits = [(_getattr(resource, name), value) for name, value in config["rlimits"]]
        setrlimit = resource.setrlimit
        me = getpid()
        modules = _sys.modules

        def become_child(fds):
            # PR_SET_PDEATHSIG (1) SIGKILL: never outlive the zygote (nor wait for one that is gone).
            if prctl(1, 9, 0, 0, 0) != 0 or getppid() != me:
                _exit(125)
            setpgid(0, 0)
            for target, fd in _zip((0, 1, 2), fds):
                dup2(fd, target)
            closerange(3, 1 << 20)
            for resource_id, value in limits:
                setrlimit(resource_id, (value, value))
            if prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE
                _exit(125)
            if abi > 0:
                ruleset = syscall(create_ruleset, attr_pointer, attr_size, 0)
                if ruleset < 0 or syscall(restrict_self, ruleset, 0) != 0:
                    _exit(125)
                close(ruleset)
            # PR_SET_SECCOMP (22), SECCOMP_MODE_FILTER (2): stacked on the zygote's.
            if prctl(22, 2, fprog_pointer, 0, 0) != 0:
                _exit(125)
            for name in _list(modules):
                if name == "ctypes" or name == "_ctypes" or name[:7] == "ctypes.":
                    del modules[name]

        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0, 0)
        space = _socket.CMSG_SPACE(3 * 4)
        rights = (_socket.SOL_SOCKET, _socket.SCM_RIGHTS)
        order = _sys.byteorder
        # Everything loaded so far is the children's shared, copy-on-write memory: no collection
        # (in the zygote or a child) walks it and so copies its pages.
        _gc_freeze()
        sock.sendmsg([b"ready"])
        poller = select.poll()
        poller.register(0, select.POLLIN)
        running = {}
        while True:
            for fd, _events in poller.poll():
                if fd != 0:
                    job, pid = running.pop(fd)
                    poller.unregister(fd)
                    status, usage = wait4(pid, 0)[1:]
                    close(fd)
                    cpu = _int((usage.ru_utime + usage.ru_stime) * 1e6)
                    sock.sendmsg([b"E %s %d %d" % (job, status, cpu)])
                    continue
                data, ancillary = sock.recvmsg(64, space)[:2]
                if not data:
                    _exit(0)  # the server closed the socket: it is stopping
                fds = []
                for level, kind, payload in ancillary:
                    if (level, kind) == rights:
                        fds += [_int.from_bytes(payload[i:i + 4], order) for i in _range(0, _len(payload) - 3, 4)]
                job = data[2:]
                pid = -1
                if _len(fds) == 3:
                    try:
                        pid = fork()
                    except _OSError:
                        pass
                if pid == 0:
                    sock.detach()  # fd 0 becomes the job's input
                    become_child(fds)
                    return
                for fd in fds:
                    close(fd)
                if pid < 0:
                    sock.sendmsg([b"F " + job])
                    continue
                pidfd = pidfd_open(pid)
                sock.sendmsg([b"S " + job], [(rights[0], rights[1], pidfd.to_bytes(4, order))])
                poller.register(pidfd, select.POLLIN)
                running[pidfd] = (job, pid)

    def start_like_site(import_path):
        """What `site` does at a normal start, except running .pth files and sitecustomize."""
        import site  # frozen, quick; loads `os` as a normal start does

        if import_path:
            _sys.path[:] = import_path
        site.setquit()
        site.setcopyright()
        site.sethelper()

    # argv: -c, [--zygote CONFIG], then the import path of an ordinary start; the submission
    # sees just ["-c"].
    argv = sys.argv[1:]
    config = None
    if argv[:1] == ["--zygote"]:
        config, argv = argv[1], argv[2:]
    start_like_site(argv)
    del sys.argv[1:]
    # The harness's `gc` is the only one: an import by the submission is refused.
    sys.modules.pop("gc", None)
    if config is not None:
        return prepare, _exit, lambda: zygote(config)
    _fd_write(1, b"ready\n")
    return prepare, _exit, lambda: None


_harness = _make_harness(globals())
del _make_harness
# The fork server returns here only in a child, confined, with its job waiting on fd 0.
_harness[2]()
# Both harness functions are taken before the run starts; `prepare` deletes `_harness`. The run
# ends in `_exit(0)` after its last record: reaching the exit below means it was cut short.
_harness[1](70 + any(_harness[0]()))
