"""The process scan that the bench test uses to see a stack process left running."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

from tests.processes import processes_mentioning


def test_a_running_process_is_found_by_its_command_line_and_a_stopped_one_is_not() -> None:
    place = f"/tmp/streamguard-test-{uuid.uuid4().hex}"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", place])
    try:
        # until the child has exec'd, its command line is still the parent's
        deadline = time.monotonic() + 10
        while not processes_mentioning(place) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [pid for pid, _ in processes_mentioning(place)] == [child.pid]
    finally:
        child.kill()
        child.wait(10)
    assert processes_mentioning(place) == []
