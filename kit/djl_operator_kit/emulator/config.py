"""Settings of one emulator instance."""

from __future__ import annotations

from dataclasses import dataclass

from .faults import check_time_scale


@dataclass
class EmulatorConfig:
    region: str = "us-east-1"
    # None: a distinct 12-digit account per emulator in this process, so two emulators never
    # share S3 objects or ARNs. Set it for stable ARNs in a demo.
    account_id: str | None = None
    # Lifecycle delays in seconds (change them later with ``emulator.faults.set``).
    create_delay: float = 0.0
    update_delay: float = 0.0
    delete_delay: float = 0.0
    rollback_delay: float = 0.0
    # Deployment guardrails' waits (WaitIntervalInSeconds, TerminationWaitInSeconds,
    # MaximumExecutionTimeoutInSeconds) last this many wall seconds per second asked for, so a test
    # can run a minute's bake in seconds. Only the duration is scaled: DescribeEndpoint still says
    # "Baking for 60 seconds" and LastDeploymentConfig echoes the request, as AWS does at 1.0.
    guardrail_time_scale: float = 1.0
    host: str = "127.0.0.1"
    port: int = 0  # SageMaker + runtime + admin; 0 picks a free port
    s3_port: int = 0
    # How long InvokeEndpoint waits for a model server's /ping to turn 200.
    runtime_start_timeout: float = 120.0

    def __post_init__(self) -> None:
        for name in ("create_delay", "update_delay", "delete_delay", "rollback_delay", "runtime_start_timeout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"EmulatorConfig.{name} must be a number >= 0, got {value!r}")
        check_time_scale(self.guardrail_time_scale)
        if self.account_id is not None and not (len(self.account_id) == 12 and self.account_id.isdigit()):
            raise ValueError(f"EmulatorConfig.account_id must be 12 digits, got {self.account_id!r}")
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"EmulatorConfig.host must be a loopback address, got {self.host!r}")
