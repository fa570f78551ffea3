# Runs one submission inside the sandbox and reports observations; it never scores.
#
# Once started it prints "ready" (no nonce: nothing submitted has run yet). Then the Rust
# side sends one JSON job on stdin and reads lines "<nonce> <json>" on stdout:
#   {"kind": "rules", "ok": bool, "reason": str}
#   {"kind": "module", "ok": bool, "reason": str}
#   {"kind": "call", "id": str, "outcome": "returned"|"raised"|"timed_out",
#    "value": tagged, "error": str, "watched": tagged users list after the call, "ms": float}
#   {"kind": "end"}
# Values are tagged so that Python types survive JSON exactly:
#   ["n"] None, ["b", bool], ["i", "digits"], ["f", "repr"], ["s", str],
#   ["l", [...]] list, ["t", [...]] tuple, ["d", [[k, v], ...]] dict,
#   ["o", "type name"] anything else (not plain data; the scorer treats it as opaque).
# Everything this file needs is bound before the submission runs, so code that
# patches builtins or modules cannot change how observations are written.
#
# The interpreter starts before there is a submission (the server keeps some waiting): it sets
# up, prints "ready", and blocks reading the job; the job's time starts when it is sent.
# Start-up is kept lean because every submission gets a new interpreter: Python runs with -S
# (site's .pth files are the slowest part of start-up), and this file loads the C modules
# `_ast`, `_json` and `_signal` rather than `ast`, `json` and `signal`, whose Python layers
# import `re`, `enum`, `contextlib` and more: about 10 ms of CPU for every submission.

import sys
import time

import _ast
import _signal
from posix import _exit

try:
    from _json import encode_basestring_ascii as _quote
    from _json import make_scanner as _make_scanner
except ImportError:  # an interpreter without the C accelerator: the same, in Python
    from json.encoder import py_encode_basestring_ascii as _quote
    from json.scanner import py_make_scanner as _make_scanner

_write = sys.stdout.buffer.write
_flush = sys.stdout.buffer.flush
_perf = time.perf_counter
_setitimer = _signal.setitimer
_type = type
_len = len
_str = str
_repr = repr
_isinstance = isinstance
_getattr = getattr
_dict_items = dict.items
_join = ", ".join
_BaseException = BaseException
_NoneType = type(None)
_Exception = Exception
_callable = callable
_round = round
_AST = _ast.AST
_ITIMER_REAL = _signal.ITIMER_REAL

MAX_DEPTH = 24
MAX_NODES = 50_000
MAX_STR = 200_000


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


def _encode(value):
    """JSON as json.dumps writes it, for the values records hold (ASCII only)."""
    kind = _type(value)
    if kind is str:
        return _quote(value)
    if kind is list:
        return "[" + _join([_encode(v) for v in value]) + "]"
    if kind is dict:
        return "{" + _join([_quote(k) + ": " + _encode(v) for k, v in _dict_items(value)]) + "}"
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return _repr(value)  # the harness's own ints and finite floats


def _emit(nonce, record):
    _write((nonce + " " + _encode(record) + "\n").encode("utf-8", "replace"))
    _flush()


def _tag(value, depth, budget):
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        return ["o", "value too large or too deep"]
    kind = _type(value)
    if value is None:
        return ["n"]
    if kind is bool:
        return ["b", value]
    if kind is int:
        try:
            return ["i", _str(value)]
        except _Exception:
            return ["o", "int too large"]
    if kind is float:
        return ["f", _repr(value)]
    if kind is str:
        if _len(value) > MAX_STR:
            return ["o", "str too long"]
        return ["s", value]
    if kind is list:
        return ["l", [_tag(v, depth + 1, budget) for v in value]]
    if kind is tuple:
        return ["t", [_tag(v, depth + 1, budget) for v in value]]
    if kind is dict:
        return ["d", [[_tag(k, depth + 1, budget), _tag(v, depth + 1, budget)] for k, v in _dict_items(value)]]
    try:
        name = kind.__name__
        if _type(name) is not str:
            name = "object"
    except _BaseException:
        name = "object"
    return ["o", name]


def tag(value):
    return _tag(value, 0, [MAX_NODES])


def _describe(exc):
    name = _type(exc).__name__
    try:
        text = _str(exc)
    except _BaseException:
        text = ""
    if _type(text) is not str:
        text = ""
    text = text[:300]
    return name + (": " + text if text else "")


def _on_alarm(signum, frame):
    raise _CallTimeout()


def _rule_broken(node, rules):
    """The first rule `node` itself breaks (its children are checked separately), or None."""
    kind = _type(node)
    if kind is _ast.Import:
        for alias in node.names:
            if not _module_allowed(alias.name, rules["allowed_imports"]):
                return "import of '%s' is not allowed" % alias.name
    elif kind is _ast.ImportFrom:
        module = node.module or ""
        if node.level or not _module_allowed(module, rules["allowed_imports"]):
            return "import from '%s' is not allowed" % ("." * node.level + module)
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


def _module_allowed(name, allowed):
    return name in allowed or name.split(".")[0] in allowed


def check_rules(code, rules):
    try:
        tree = compile(code, "submission.py", "exec", _ast.PyCF_ONLY_AST)
    except SyntaxError as exc:
        return "not valid Python: %s (line %s)" % (exc.msg, exc.lineno)
    except RecursionError:
        return "the code is nested too deeply to check"
    except _BaseException as exc:
        return "not valid Python: %s" % _describe(exc)
    rules = {key: set(values) for key, values in _dict_items(rules)}
    # Depth first, each node before its children, in source order: the first problem found is
    # the first in the code. A stack, not recursion, so deep nesting cannot stop the check.
    pending = [tree]
    while pending:
        node = pending.pop()
        problem = _rule_broken(node, rules)
        if problem is not None:
            return "line %d: %s" % (_getattr(node, "lineno", 0), problem)
        children = []
        for field in node._fields:
            child = _getattr(node, field, None)
            if _isinstance(child, _AST):
                children.append(child)
            elif _type(child) is list:
                children.extend([c for c in child if _isinstance(c, _AST)])
        children.reverse()
        pending.extend(children)
    return None


def run_call(nonce, function, spec, limit):
    args = spec["args"]
    watch = spec.get("watch_users")
    record = {"kind": "call", "id": spec["id"]}
    started = _perf()
    _setitimer(_ITIMER_REAL, limit)
    try:
        if spec.get("keywords"):
            value = function(users=args[0], start_date=args[1], end_date=args[2])
        else:
            value = function(args[0], args[1], args[2])
        _setitimer(_ITIMER_REAL, 0)
        record["outcome"] = "returned"
        record["value"] = tag(value)
    except _CallTimeout:
        _setitimer(_ITIMER_REAL, 0)
        record["outcome"] = "timed_out"
    except _BaseException as exc:
        _setitimer(_ITIMER_REAL, 0)
        record["outcome"] = "raised"
        record["error"] = _describe(exc)
    record["ms"] = _round((_perf() - started) * 1000, 3)
    if watch and record["outcome"] != "timed_out":
        record["watched"] = tag(args[0])
    _emit(nonce, record)


def _start_like_site(import_path):
    """What `site` does at a normal start, except running .pth files and sitecustomize."""
    import site  # frozen, quick; loads `os` as a normal start does

    if import_path:
        sys.path[:] = import_path
    site.setquit()
    site.setcopyright()
    site.sethelper()


def main():
    # argv: -c, then the import path of an ordinary start; the submission sees just ["-c"].
    _start_like_site(sys.argv[1:])
    del sys.argv[1:]
    _write(b"ready\n")
    _flush()

    data = sys.stdin.buffer.read()
    sys.stdin.close()
    if not data:
        return  # never used: the server closed the pipe (shutting down, or a spare)
    job = _scan(data.decode("utf-8"), 0)[0]
    nonce = job["nonce"]
    del job["nonce"]

    problem = check_rules(job["code"], job["rules"])
    _emit(nonce, {"kind": "rules", "ok": problem is None, "reason": problem})
    if problem is not None:
        return

    _signal.signal(_signal.SIGALRM, _on_alarm)
    sink = _Sink()
    sys.stdout = sink
    sys.stderr = sink
    namespace = {"__name__": "submission", "__builtins__": __builtins__}
    _setitimer(_ITIMER_REAL, job["module_timeout_s"])
    try:
        exec(compile(job["code"], "submission.py", "exec"), namespace)
        _setitimer(_ITIMER_REAL, 0)
        function = namespace.get(job["function"])
        if function is None or not _callable(function):
            _emit(nonce, {"kind": "module", "ok": False,
                          "reason": "the code does not define %s()" % job["function"]})
            return
    except _CallTimeout:
        _emit(nonce, {"kind": "module", "ok": False, "timed_out": True,
                      "reason": "running the module took too long"})
        return
    except _BaseException as exc:
        _setitimer(_ITIMER_REAL, 0)
        _emit(nonce, {"kind": "module", "ok": False,
                      "reason": "running the module raised %s" % _describe(exc)})
        return
    _emit(nonce, {"kind": "module", "ok": True, "reason": None})

    for spec in job["calls"]:
        run_call(nonce, function, spec, job["call_timeout_s"])
    _emit(nonce, {"kind": "end"})


main()
# Everything is reported and flushed; skip the interpreter's clean-up (milliseconds the
# server would wait for) and whatever exit handlers the submission registered.
_flush()
_exit(0)
