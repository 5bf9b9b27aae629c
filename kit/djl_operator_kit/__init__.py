"""The local kit around djl-sagemaker-operator: the SageMaker + S3 emulator, the local
model server, a loopback control plane and the demo. It imports the operator runtime
(``djl_operator``); the runtime never imports it, and the operator image does not ship it."""

__version__ = "0.1.0"
