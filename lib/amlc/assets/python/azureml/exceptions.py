"""azureml.exceptions shim."""


class AzureMLException(Exception):
    pass


class UserErrorException(AzureMLException):
    pass


class WebserviceException(AzureMLException):
    pass


class ModelNotFoundException(WebserviceException):
    pass
