"""Local SageMaker + S3 emulator for tests and the demo.

moto cannot stand in for SageMaker (it rejects ``ml.g5.*``, lacks
``UpdateEndpoint`` and its endpoints never take time or fail), so this package
serves the SageMaker hosting API itself -- the real JSON 1.1 wire protocol,
validated against botocore's own service model -- with time-driven lifecycles,
rollbacks and injectable faults, next to moto's S3 server.

In-process use::

    from djl_operator_kit.emulator import Emulator, EmulatorConfig
    emu = Emulator(EmulatorConfig(create_delay=0.0)).start()
    sm = emu.client("sagemaker")            # stock boto3, also "s3", "sagemaker-runtime", "sts",
                                            # "resourcegroupstaggingapi"
    emu.env                                 # AWS_ENDPOINT_URL_* etc. for subprocesses
    emu.faults.fail_model_start(model_name="m-1")
    emu.calls(service="sagemaker", operation="CreateEndpoint")
    emu.client("resourcegroupstaggingapi").get_resources(TagFilters=[{"Key": "k", "Values": ["v"]}])
    emu.stop()

The same port also answers the Resource Groups Tagging API's ``GetResources`` over the
SageMaker resources (JSON 1.1, ``X-Amz-Target: ResourceGroupsTaggingAPI_20170126.*``; see
:mod:`~djl_operator_kit.emulator.tagging`) and STS ``GetCallerIdentity`` (Query protocol, XML;
:mod:`~djl_operator_kit.emulator.sts`), and Application Auto Scaling for SageMaker variants
(JSON 1.1, ``X-Amz-Target: AnyScaleFrontendService.*``; :mod:`~djl_operator_kit.emulator.autoscaling`),
whose target tracking follows a simulated invocation rate, and CloudWatch metric alarms
(JSON 1.0 ``X-Amz-Target: GraniteServiceVersion20100801.*`` or Smithy RPC v2 CBOR;
:mod:`~djl_operator_kit.emulator.cloudwatch`), which UpdateEndpoint's deployment guardrails read
(:mod:`~djl_operator_kit.emulator.rollout`). Faults name it like any operation
(``throttle(operations=["GetResources"])``, ``deny("GetResources")``); a throttle without
``operations`` only reaches SageMaker's control plane.

Endpoint state changes are published as EventBridge's ``SageMaker Endpoint State Change`` events
to the SQS queues that the user's rules target (:mod:`~djl_operator_kit.emulator.events`): moto's
SQS and EventBridge served on a side port (``emu.client("sqs")``, ``emu.client("events")``,
``AWS_ENDPOINT_URL_SQS``/``AWS_ENDPOINT_URL_EVENTBRIDGE``), with delivery faults
(``emu.events.set_faults(drop=.., reorder=.., duplicate=.., endpoint="glob", seed=..)``).

As a process: ``djl-operator-kit emulator --port 8090`` prints ``KEY=VALUE`` lines
(``AWS_ENDPOINT_URL_SAGEMAKER``, ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``,
``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API``, ``AWS_ENDPOINT_URL_STS``,
``AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING``, ``AWS_ENDPOINT_URL_CLOUDWATCH``, ``AWS_ENDPOINT_URL_SQS``,
``AWS_ENDPOINT_URL_EVENTBRIDGE``,
``AWS_DEFAULT_REGION``, dummy credentials,
``DJL_EMULATOR_ADMIN_URL``) then ``# djl emulator ready``.
:class:`~djl_operator_kit.emulator.client.RemoteEmulator` drives it from Python.

Admin HTTP API (same port as SageMaker; JSON in and out; bad input -> 400 naming the field):

====== ======================================= ==============================================
GET    /_emulator/health                       ``{"ok": true}``
GET    /_emulator/env                          the client environment
GET    /_emulator/calls?service=&operation=    ``{"calls": [{service, operation, resource,
                                               error_code, bytes, bytes_out, time,
                                               principal}]}`` (principal: the SigV4 access key id)
DELETE /_emulator/calls                        forget recorded calls
GET    /_emulator/faults                       the faults configured now
DELETE /_emulator/faults                       clear faults, restore configured delays
POST   /_emulator/faults/set                   ``{"create_delay": 5, "update_delay": ..,
                                               "delete_delay": .., "rollback_delay": ..}``
POST   /_emulator/faults/fail_model_start      ``{"model_name": "glob", "image": "glob", "reason": ..}``
POST   /_emulator/faults/capacity_error        ``{"instance_type": "ml.g5.*", "reason": ..}``
POST   /_emulator/faults/throttle              ``{"rate": 0.5, "seed": 1}`` or ``{"every": 3}``;
                                               optional ``"operations": [..]``, ``"limit": N``
POST   /_emulator/faults/deny                  ``{"operations": ["CreateModel"]}`` (AccessDenied)
POST   /_emulator/faults/internal_error        ``{"operations": ["DescribeEndpoint"]}`` (HTTP 500)
POST   /_emulator/faults/quota                 ``{"instance_type": .., "instances": N}``
                                               (ResourceLimitExceeded beyond it)
POST   /_emulator/autoscaling/invocation_rate  ``{"endpoint": .., "variant": .., "per_minute": N}``:
                                               the load target tracking sees on a variant
GET    /_emulator/events                       event delivery faults and counts
POST   /_emulator/events                       ``{"drop": 0.5, "reorder": .., "duplicate": .., "endpoint": "glob",
                                               "seed": N}``: delivery faults (probabilities)
POST   /_emulator/endpoints/<name>/fail        ``{"reason": ".."}``: endpoint -> Failed now
POST   /_emulator/reset                        forget everything (resources, faults, calls, S3)
====== ======================================= ==============================================

Out-of-band changes for drift tests go through plain boto3 (``UpdateEndpoint``,
``UpdateEndpointWeightsAndCapacities``, ``DeleteEndpoint``...).
"""

from .app import Emulator
from .calls import Call
from .config import EmulatorConfig
from .faults import CAPACITY_REASON, Faults

__all__ = ["CAPACITY_REASON", "Call", "Emulator", "EmulatorConfig", "Faults"]
