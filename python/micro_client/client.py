"""A small HTTP client for micro's reward server (standard library only).

The server is found from the environment unless given explicitly:

- ``MICRO_URL``: base URL of ``micro serve`` (default ``http://127.0.0.1:8080``)
- ``MICRO_API_KEY``: an API key from ``micro serve keys add``
- ``MICRO_TIMEOUT``: seconds per request (default 180, as OpenRLHF waits)
- ``MICRO_RETRIES``: attempts per request on connection errors, 408, 429 and any 5xx
  (default 5); other 4xx answers are raised at once
"""

import json
import os
import time
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8080"

# 4xx statuses worth retrying: a timeout or rate limit may pass. Every 5xx is retried too (a
# backbone failure, an overloaded or restarting server); any other 4xx is the request's own
# fault and would fail again.
RETRY_4XX = {408, 429}


def retryable(status):
    """Whether an answer with this HTTP status is worth sending the request again."""
    return status >= 500 or status in RETRY_4XX


class MicroError(Exception):
    """A request the server refused, with its HTTP status, error code and message."""

    def __init__(self, status, code, message):
        super().__init__(f"micro serve answered {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class MicroClient:
    """Calls one micro server; safe to share between threads (one connection per call)."""

    def __init__(self, url=None, api_key=None, timeout=None, retries=None):
        env = os.environ
        self.url = (url or env.get("MICRO_URL") or DEFAULT_URL).rstrip("/")
        self.api_key = api_key if api_key is not None else env.get("MICRO_API_KEY")
        self.timeout = float(timeout if timeout is not None else env.get("MICRO_TIMEOUT", 180))
        self.retries = max(1, int(retries if retries is not None else env.get("MICRO_RETRIES", 5)))

    def post(self, path, body):
        """POSTs ``body`` as JSON and returns the decoded JSON answer."""
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        for attempt in range(self.retries):
            request = urllib.request.Request(self.url + path, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as e:
                error = _error_of(e)
                if not retryable(e.code) or attempt + 1 == self.retries:
                    raise error from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                if attempt + 1 == self.retries:
                    raise ConnectionError(f"cannot reach micro serve at {self.url}: {e}") from e
            time.sleep(min(2**attempt, 30) * 0.5)
        raise AssertionError("unreachable")

    def score(self, responses, prompt=None, user_id=None, context=None):
        """``POST /v1/score``: rewards of several responses to one prompt for a user or context.

        ``prompt`` is text or a list of ``{"role", "content"}`` messages. Returns the server's
        answer (``rewards``, ``weights``, ``weights_from``, ...).
        """
        body = {"responses": list(responses), "pairs": False}
        for name, value in (("prompt", prompt), ("user_id", user_id), ("context", context)):
            if value is not None:
                body[name] = value
        return self.post("/v1/score", body)

    def get_reward(self, queries, prompts=None, labels=None):
        """``POST /get_reward``: OpenRLHF's shape (``rewards``, ``scores``, ``extra_logs``)."""
        body = {"query": list(queries)}
        if prompts is not None:
            body["prompts"] = list(prompts)
        if labels is not None:
            body["labels"] = list(labels)
        return self.post("/get_reward", body)

    def reward(self, response, prompt=None, label=None):
        """``POST /slime/reward``: one response's reward as a float. ``response`` may end with
        an end-of-turn token and ``prompt`` may be chat-templated text; the server removes the
        markup. ``label`` follows the server's label convention (see :func:`label`)."""
        return float(self.post("/slime/reward", {"prompt": prompt, "response": response, "label": label}))


def label(user_id=None, context=None):
    """A label in micro's convention: a JSON object string with ``user_id`` and/or ``context``."""
    return json.dumps({k: v for k, v in (("user_id", user_id), ("context", context)) if v})


def parse_label(value, where="label"):
    """``(user_id, context)`` of a label in micro's convention, as the server reads one: a dict
    or JSON object string with ``user_id`` and/or ``context``, a plain string as a user id;
    ``None`` or blank for nobody in particular. Raises ``ValueError`` for anything else."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise ValueError(f"{where} looks like a JSON object but does not parse ({e})") from None
    if isinstance(value, str):
        return value.strip(), None
    if isinstance(value, dict):
        fields = []
        for name in ("user_id", "context"):
            v = value.get(name)
            if v is not None and not isinstance(v, str):
                raise ValueError(f"{where}.{name} is {v!r}: it must be a string")
            fields.append(v or None)
        return tuple(fields)
    raise ValueError(f"{where} is {value!r}: give a user id, or a dict with user_id and/or context")


def _error_of(e):
    try:
        err = json.loads(e.read().decode("utf-8"))["error"]
        return MicroError(e.code, err.get("code", "error"), err.get("message", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        return MicroError(e.code, "http_error", str(e.reason))
