"""The client's three trainer entry points against a running ``micro serve`` (text backbone):
each gives ``/v1/score``'s reward for the same conversation, response and user or context.

Run with MICRO_URL and MICRO_API_KEY set (crates/micro-cli/tests/it/rl_trainers.rs does).
"""

import importlib.util
import os
import unittest

from micro_client import MicroClient, MicroError, label

SYSTEM = "You are a helpful assistant."
QUESTION = "How do I boil an egg?"
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
CHATML = (
    f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{QUESTION}<|im_end|>\n"
    "<|im_start|>assistant\n"
)
RESPONSES = ["Boil it for nine minutes.", "Eggs are laid by hens and many other birds."]
BRIEF, DETAILED = "I like short answers.", "I want every detail explained."


def v1(responses, **who):
    return MicroClient().score(responses, prompt=MESSAGES, **who)["rewards"]


class Base(unittest.TestCase):
    def assertClose(self, got, want):
        self.assertAlmostEqual(got, want, delta=1e-5 + 1e-4 * abs(want))

    def assertDiffer(self, a, b):
        self.assertGreater(abs(a - b), 1e-3, "two contexts gave the same reward")


class TestErrors(Base):
    def test_a_refusal_raises_with_the_servers_message(self):
        with self.assertRaises(MicroError) as e:
            MicroClient(retries=1).score(RESPONSES, user_id="nobody-at-all")
        self.assertEqual(e.exception.status, 404)
        self.assertIn("nobody-at-all", e.exception.message)


class TestOpenRlhfRewardFunc(Base):
    """The file OpenRLHF loads with --reward.remote_url, loaded the way OpenRLHF loads it."""

    def load(self):
        import micro_client.openrlhf as m

        spec = importlib.util.spec_from_file_location("reward_func", m.__file__)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.reward_func

    def test_rewards_equal_v1_score_and_follow_the_label(self):
        reward_func = self.load()
        queries = [CHATML + r + "<|im_end|>" for r in RESPONSES]
        out = reward_func(queries, [CHATML, CHATML], [label(context=BRIEF), label(context=BRIEF)])
        self.assertEqual(set(out), {"rewards", "scores", "extra_logs"})
        for got, want in zip(out["rewards"], v1(RESPONSES, context=BRIEF)):
            self.assertClose(got, want)
        other = reward_func(queries[:1], [CHATML], [label(context=DETAILED)])
        self.assertDiffer(other["rewards"][0], out["rewards"][0])
        self.assertEqual(len(out["extra_logs"]["micro_weight0"]), 2)


class TestVerlComputeScore(Base):
    def test_score_equals_v1_score_with_prompt_from_extra_info(self):
        from micro_client.verl import compute_score

        want = v1(RESPONSES[:1], context=BRIEF)[0]
        # verl's answer key ("42") is not a user: the label is extra_info's `persona`.
        info = {"prompt": MESSAGES, "persona": label(context=BRIEF)}
        got = compute_score("prefs", RESPONSES[0] + "<|im_end|>", "42", info, label_key="persona")
        self.assertIsInstance(got, float)
        self.assertClose(got, want)
        # The context straight from extra_info; the prompt as templated text.
        got = compute_score("prefs", RESPONSES[0], "42", {"prompt": CHATML, "context": DETAILED})
        self.assertClose(got, v1(RESPONSES[:1], context=DETAILED)[0])
        self.assertDiffer(got, want)
        # No label at all: the router on the prompt, as /v1/score without a user.
        got = compute_score("gsm8k", RESPONSES[0], "42", {"prompt": MESSAGES})
        self.assertClose(got, v1(RESPONSES[:1])[0])


class TestTrlRewardFunc(Base):
    def test_batch_rewards_equal_v1_score_per_user_and_context(self):
        from micro_client.trl import micro_reward

        # A user with one piece of feedback, so its weights differ from the router's.
        feedback = {"prompt": QUESTION, "chosen": RESPONSES[0], "rejected": RESPONSES[1], "context": BRIEF}
        MicroClient().post("/v1/users/trl-ann/feedback", feedback)
        self.assertEqual(micro_reward.__name__, "micro_reward")  # TRL logs by __name__
        n = len(RESPONSES)
        # Conversational samples: message-list prompts and completions.
        prompts = [MESSAGES] * (3 * n)
        completions = [[{"role": "assistant", "content": r}] for r in RESPONSES * 3]
        contexts = [BRIEF] * n + [DETAILED] * n + [None] * n
        users = [None] * (2 * n) + ["trl-ann"] * n
        got = micro_reward(prompts, completions, context=contexts, user_id=users)
        want = v1(RESPONSES, context=BRIEF) + v1(RESPONSES, context=DETAILED) + v1(RESPONSES, user_id="trl-ann")
        self.assertEqual(len(got), len(want))
        for g, w in zip(got, want):
            self.assertClose(g, w)
        self.assertDiffer(got[0], got[n])
        # Standard (text) samples without personal columns: the router on the prompt.
        got = micro_reward([QUESTION] * n, RESPONSES)
        want = MicroClient().score(RESPONSES, prompt=QUESTION)["rewards"]
        for g, w in zip(got, want):
            self.assertClose(g, w)
        # A label column of another name, as OpenRLHF's --data.label_key persona.
        from micro_client.trl import make_reward_func

        persona = [label(context=BRIEF)] * n + ["trl-ann"] * n
        got = make_reward_func(label_column="persona")(prompts[: 2 * n], completions[: 2 * n], persona=persona)
        want = v1(RESPONSES, context=BRIEF) + v1(RESPONSES, user_id="trl-ann")
        for g, w in zip(got, want):
            self.assertClose(g, w)


if __name__ == "__main__":
    unittest.main()
