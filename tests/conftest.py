"""Shared test setup: every test runs offline against real local parts."""

import os

# Nothing in the tests may reach a model hub or a real AWS account.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)
# The operator processes the tests start read their policy from here.
os.environ.setdefault("DJL_OPERATOR_POLICY_FILE", os.path.join(os.path.dirname(__file__), "operator-policy.yaml"))

pytest_plugins = [
    "tests.plugins.controlplane",
    "tests.plugins.emulator",
    "tests.plugins.models",
    "tests.plugins.operator",
    "tests.plugins.aws_calls",
]
