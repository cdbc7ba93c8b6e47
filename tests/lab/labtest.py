"""What every lab test module shares: the test registry (the ctest entries run_test.py runs by
name), the verdict helpers and the step banner."""

from lab import LabError

TESTS = {}


class TestFailure(LabError):
    """A verdict not met. A LabError, so that run_test.py reports it like the lab's own failures."""


def test(*tools):
    """Registers a test and the tools it needs beyond the lab's own."""
    def wrap(fn):
        fn.tools = tools
        TESTS[fn.__name__] = fn
        return fn
    return wrap


def expect(cond, message):
    if not cond:
        raise TestFailure(message)


def step(text):
    print(f"--- {text}", flush=True)
