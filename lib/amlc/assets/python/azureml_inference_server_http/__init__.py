"""Stand-in for azureml_inference_server_http (newer import path of AMLRequest/AMLResponse), from amlc."""
