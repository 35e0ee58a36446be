"""What stands in for the outside world in the tests, the demo and the benchmarks: a fake Slack Web API
(fake_slack), signed Slack requests (signed), Slack workspace exports (slack_export), a tiny base model and its
adapters (tiny_model), and the local HTTP they run on (local_http).

Fakes only at the outer edge: each stands for Slack or a model, never for our own code, so it imports nothing of
ours (tests/test_contract.py). Not shipped: `make demo` and bench/ run from the repository root.
"""
