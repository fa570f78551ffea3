# Runs one submission inside the sandbox and reports observations; it never scores.
#
# The Rust side sends one JSON job on stdin and reads lines "<nonce> <json>" on stdout:
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

import ast
import json
import signal
import sys
import time

_write = sys.stdout.buffer.write
_flush = sys.stdout.buffer.flush
_dumps = json.dumps
_loads = json.loads
_perf = time.perf_counter
_setitimer = signal.setitimer
_type = type
_len = len
_str = str
_repr = repr
_isinstance = isinstance
_dict_items = dict.items
_BaseException = BaseException
_NoneType = type(None)
_Exception = Exception
_callable = callable
_round = round
_ITIMER_REAL = signal.ITIMER_REAL

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


def _emit(nonce, record):
    _write((nonce + " " + _dumps(record) + "\n").encode("utf-8", "replace"))
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


class _Visitor(ast.NodeVisitor):
    def __init__(self, rules):
        self.allowed = set(rules["allowed_imports"])
        self.calls = set(rules["forbidden_calls"])
        self.methods = set(rules["forbidden_methods"])
        self.attributes = set(rules["forbidden_attributes"])
        self.problem = None

    def _fail(self, node, text):
        if self.problem is None:
            self.problem = "line %d: %s" % (getattr(node, "lineno", 0), text)

    def _module_allowed(self, name):
        root = name.split(".")[0]
        return name in self.allowed or root in self.allowed

    def visit_Import(self, node):
        for alias in node.names:
            if not self._module_allowed(alias.name):
                self._fail(node, "import of '%s' is not allowed" % alias.name)
        self.generic_visit(node)

    def visit_ImportFrom(self, node):
        module = node.module or ""
        if node.level or not self._module_allowed(module):
            self._fail(node, "import from '%s' is not allowed" % ("." * node.level + module))
        self.generic_visit(node)

    def visit_Call(self, node):
        func = node.func
        if _type(func) is ast.Name and func.id in self.calls:
            self._fail(node, "calling %s() is not allowed" % func.id)
        if _type(func) is ast.Attribute and func.attr in self.methods:
            self._fail(node, "calling .%s() is not allowed" % func.attr)
        self.generic_visit(node)

    def visit_Attribute(self, node):
        if node.attr in self.attributes:
            self._fail(node, "the attribute %s is not allowed" % node.attr)
        self.generic_visit(node)


def check_rules(code, rules):
    try:
        tree = ast.parse(code, filename="submission.py")
    except SyntaxError as exc:
        return "not valid Python: %s (line %s)" % (exc.msg, exc.lineno)
    except _BaseException as exc:
        return "not valid Python: %s" % _describe(exc)
    visitor = _Visitor(rules)
    try:
        visitor.visit(tree)
    except RecursionError:
        return "the code is nested too deeply to check"
    return visitor.problem


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


def main():
    job = _loads(sys.stdin.buffer.read())
    sys.stdin.close()
    nonce = job["nonce"]
    del job["nonce"]

    problem = check_rules(job["code"], job["rules"])
    _emit(nonce, {"kind": "rules", "ok": problem is None, "reason": problem})
    if problem is not None:
        return

    signal.signal(signal.SIGALRM, _on_alarm)
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
