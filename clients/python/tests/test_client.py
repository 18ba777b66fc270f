"""The client without a server of micro's own: retries against a stub HTTP server, the
trainer entry points against a stub client, and the package as pip installs it.

Run from this folder: ``PYTHONPATH=. python -m unittest tests.test_client`` (cargo test runs it:
crates/micro-cli/tests/it/rl_trainers.rs).
"""

import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import unittest
import warnings
from unittest import mock

import micro_client
from micro_client import MicroClient, MicroError, client as client_module, label

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Stub(http.server.BaseHTTPRequestHandler):
    """Answers each POST with the next status of ``server.statuses`` (200 with ``{}`` last)."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.calls += 1
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        body = b"{}" if status == 200 else json.dumps({"error": {"code": "x", "message": f"status {status}"}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class TestRetries(unittest.TestCase):
    def setUp(self):
        self.server = http.server.HTTPServer(("127.0.0.1", 0), Stub)
        self.server.calls, self.server.statuses = 0, []
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.client = MicroClient(url=f"http://127.0.0.1:{self.server.server_port}", retries=3)
        patcher = mock.patch.object(client_module.time, "sleep")
        patcher.start()
        self.addCleanup(patcher.stop)
        self.addCleanup(self.server.server_close)
        self.addCleanup(self.server.shutdown)

    def test_server_errors_are_retried(self):
        for status in (500, 502, 503, 504, 507):
            self.server.calls, self.server.statuses = 0, [status]
            self.assertEqual(self.client.post("/v1/score", {}), {}, status)
            self.assertEqual(self.server.calls, 2, status)

    def test_client_errors_are_raised_at_once(self):
        for status in (400, 401, 404, 409, 413, 422):
            self.server.calls, self.server.statuses = 0, [status]
            with self.assertRaises(MicroError) as e:
                self.client.post("/v1/score", {})
            self.assertEqual((e.exception.status, self.server.calls), (status, 1))

    def test_a_lasting_server_error_is_raised_after_the_last_attempt(self):
        self.server.statuses = [500] * 5
        with self.assertRaises(MicroError) as e:
            self.client.post("/v1/score", {})
        self.assertEqual((e.exception.status, self.server.calls), (500, 3))


class FakeClient:
    """Records ``score`` and ``reward`` calls; each reward is 1.0."""

    def __init__(self):
        self.calls = []

    def score(self, responses, prompt=None, user_id=None, context=None):
        self.calls.append({"responses": list(responses), "prompt": prompt, "user_id": user_id, "context": context})
        return {"rewards": [1.0] * len(responses)}

    def reward(self, response, prompt=None, label=None):
        self.calls.append({"response": response, "prompt": prompt, "label": label})
        return 1.0


class TestImports(unittest.TestCase):
    def test_the_entry_points_are_attributes_of_the_package(self):
        self.assertTrue(callable(micro_client.trl.micro_reward))
        self.assertTrue(callable(micro_client.verl.compute_score))
        self.assertTrue(callable(micro_client.openrlhf.reward_func))


class TestTrlColumns(unittest.TestCase):
    def whom(self, fake):
        return sorted(((c["user_id"] or ""), (c["context"] or "")) for c in fake.calls)

    def test_a_named_label_column_says_whom_each_sample_is_for(self):
        fake = FakeClient()
        f = micro_client.trl.make_reward_func(fake, label_column="persona")
        persona = [label(context="Be brief."), "u42", {"user_id": "u7"}, ""]
        got = f(["q"] * 4, ["a", "b", "c", "d"], persona=persona, trainer_state=None)
        self.assertEqual(got, [1.0] * 4)
        self.assertEqual(self.whom(fake), sorted([("", "Be brief."), ("u42", ""), ("u7", ""), ("", "")]))

    def test_a_named_column_the_batch_lacks_is_an_error(self):
        f = micro_client.trl.make_reward_func(FakeClient(), label_column="persona")
        with self.assertRaises(KeyError) as e:
            f(["q"], ["a"], user_id=["u1"])
        self.assertIn("persona", str(e.exception))
        f = micro_client.trl.make_reward_func(FakeClient(), user_column="uid")
        with self.assertRaises(KeyError):
            f(["q"], ["a"], persona=["u1"])

    def test_a_label_of_another_type_is_an_error(self):
        f = micro_client.trl.make_reward_func(FakeClient(), label_column="persona")
        with self.assertRaises(ValueError) as e:
            f(["q"], ["a"], persona=[42])
        self.assertIn("persona[0]", str(e.exception))

    def test_without_named_columns_user_id_and_context_are_read_when_present(self):
        fake = FakeClient()
        f = micro_client.trl.make_reward_func(fake)
        f(["q", "q"], ["a", "b"], user_id=["u1", None], context=[None, "Be brief."], solution=["x", "y"])
        self.assertEqual(self.whom(fake), [("", "Be brief."), ("u1", "")])


class TestVerl(unittest.TestCase):
    def setUp(self):
        self.fake = FakeClient()
        patcher = mock.patch.object(micro_client.verl, "_client", self.fake)
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_ground_truth_is_not_a_user(self):
        micro_client.verl.compute_score("gsm8k", "The answer is 42.", "42", {"prompt": "What is 6 x 7?"})
        self.assertIsNone(self.fake.calls[-1]["label"])
        micro_client.verl.compute_score("prefs", "ok", label(user_id="u9"), {"prompt": "q"}, ground_truth_is_label=True)
        self.assertEqual(self.fake.calls[-1]["label"], {"user_id": "u9"})

    def test_the_user_comes_from_extra_info_or_its_label_key(self):
        micro_client.verl.compute_score("prefs", "ok", "42", {"prompt": "q", "user_id": "u1"})
        self.assertEqual(self.fake.calls[-1]["label"], {"user_id": "u1"})
        info = {"prompt": "q", "persona": label(context="Be brief.")}
        micro_client.verl.compute_score("prefs", "ok", "42", info, label_key="persona")
        self.assertEqual(self.fake.calls[-1]["label"], {"context": "Be brief."})
        with self.assertRaises(KeyError):
            micro_client.verl.compute_score("prefs", "ok", "42", {"prompt": "q"}, label_key="persona")

    def test_a_missing_prompt_is_an_error_unless_allowed(self):
        with self.assertRaises(ValueError) as e:
            micro_client.verl.compute_score("prefs", "ok", "42", {"user_id": "u1"})
        self.assertIn("prompt", str(e.exception))
        self.assertEqual(self.fake.calls, [])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            micro_client.verl.compute_score("prefs", "ok", "42", {}, require_prompt=False)
        self.assertTrue(any("prompt" in str(w.message) for w in caught))
        self.assertIsNone(self.fake.calls[-1]["prompt"])


def files_under(folder):
    """Every file below ``folder`` except Python's bytecode caches."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        out.update(os.path.relpath(os.path.join(dirpath, f), folder) for f in filenames)
    return out


class TestPackaging(unittest.TestCase):
    def test_pip_install_leaves_the_source_tree_as_it_was(self):
        before = files_under(ROOT)
        with tempfile.TemporaryDirectory() as target:
            cmd = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--quiet",
                   "--disable-pip-version-check", "--target", target, ROOT]
            done = subprocess.run(cmd, capture_output=True, text=True)
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertEqual(files_under(ROOT) - before, set(), "pip wrote into the source tree")
            installed = subprocess.run(
                [sys.executable, "-c", "import micro_client; print(micro_client.trl.__name__)"],
                capture_output=True, text=True, cwd=target, env={**os.environ, "PYTHONPATH": target},
            )
            self.assertEqual(installed.stdout.strip(), "micro_client.trl", installed.stderr)


if __name__ == "__main__":
    unittest.main()
