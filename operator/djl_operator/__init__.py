"""djl-sagemaker-operator: DjlEndpoint resources made real on Amazon SageMaker."""

__version__ = "0.1.0"
