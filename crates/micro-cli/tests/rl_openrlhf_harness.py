"""Runs OpenRLHF's own reward call (openrlhf/utils/agent.py, SingleTurnAgentExecutor, from the
PyPI package) against a reward server, without OpenRLHF's heavy dependencies.

OpenRLHF's package __init__ files import torch and DeepSpeed; the executor itself needs only
aiohttp and openrlhf.utils.logging_utils. So the packages `openrlhf` and `openrlhf.utils` are
registered as bare namespaces over their real folders (their __init__ files are skipped) and
agent.py is imported for real. The tokenizer and the generation engine are stand-ins: the
tokenizer maps characters to ids one to one (so decoding reproduces the text, special tokens
included) and the engine "generates" a fixed response.

Usage: python3 rl_openrlhf_harness.py OPENRLHF_PARENT_DIR REWARD_URL CASES_JSON
CASES_JSON is a list of {"prompt", "response", "label"}; prints a JSON list of
{"reward", "scores", "extra_logs"} (what the executor hands to the trainer), one per case.
"""

import asyncio
import json
import os
import sys
import types


def load_executor(parent):
    sys.path.insert(0, parent)
    for name in ("openrlhf", "openrlhf.utils"):
        module = types.ModuleType(name)
        module.__path__ = [os.path.join(parent, *name.split("."))]
        sys.modules[name] = module
    from openrlhf.utils.agent import SingleTurnAgentExecutor

    return SingleTurnAgentExecutor


class Ids(list):
    """What `tokenizer(...)["input_ids"][0]` is in OpenRLHF's call: it calls `.tolist()`."""

    def tolist(self):
        return list(self)


class CharTokenizer:
    """One id per character, so decode(encode(text)) == text, special tokens and all."""

    def __call__(self, text, add_special_tokens=False, return_tensors=None):
        return {"input_ids": [Ids(ord(c) for c in text)]}

    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(i) for i in ids)


class FixedEngine:
    """A generation engine that answers every prompt with one response."""

    def __init__(self, response):
        self.response = response

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        output = types.SimpleNamespace(
            token_ids=[ord(c) for c in self.response],
            text=self.response,
            finish_reason="stop",
            logprobs=None,
        )
        return types.SimpleNamespace(outputs=[output])


async def run_case(executor, case):
    params = types.SimpleNamespace(max_tokens=None, logprobs=None)
    out = await executor.execute(
        case["prompt"],
        case["label"],
        params,
        max_length=8192,
        hf_tokenizer=CharTokenizer(),
        llm_engine=FixedEngine(case["response"]),
    )
    return {"reward": out["reward"], "scores": out["scores"], "extra_logs": out["extra_logs"]}


async def main():
    parent, url, cases = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    executor = load_executor(parent)(remote_rm_url=url)
    # As in training, many single-query calls are in flight at once.
    results = await asyncio.gather(*(run_case(executor, c) for c in cases))
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
