"""pytest glue: a `harness` fixture that cleans up after every test and keeps
(and prints) the logs of a failed one."""
import re

import pytest

from harness import Harness


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def harness(request):
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid.split("::", 1)[-1])[:100]
    h = Harness(name)
    yield h
    rep = getattr(request.node, "rep_call", None)
    h.close(failed=rep is None or rep.failed)
