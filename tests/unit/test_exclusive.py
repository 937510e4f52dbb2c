"""The machine-wide test lock (`tests/support/exclusive.py`): a second process waits while the first holds it."""
import subprocess
import sys
import uuid

from tests.support.exclusive import lock_path, one_at_a_time

TAKE = ("import sys; from tests.support.exclusive import one_at_a_time\n"
        "with one_at_a_time(sys.argv[1]):\n    print('acquired', flush=True)\n")


def test_a_second_process_waits_for_the_lock_until_the_first_lets_go(repo_root):
    name = f"unit-{uuid.uuid4().hex}"
    try:
        with one_at_a_time(name):
            other = subprocess.Popen([sys.executable, "-c", TAKE, name], cwd=repo_root, stdout=subprocess.PIPE,
                                     text=True)
            try:
                other.wait(timeout=2)
                blocked = False
            except subprocess.TimeoutExpired:
                blocked = True
        out, _ = other.communicate(timeout=60)
        assert blocked, "the second process took a lock the first still held"
        assert other.returncode == 0 and out.strip() == "acquired"
    finally:
        lock_path(name).unlink(missing_ok=True)
