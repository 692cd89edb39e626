"""azureml.contrib.services shim: AMLRequest/rawhttp and AMLResponse for @rawhttp entry scripts."""
