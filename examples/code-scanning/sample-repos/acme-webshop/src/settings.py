"""Settings of the webshop."""

DEBUG = False
# TODO: read the credentials from the environment, not from this file
AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_REGION = "eu-west-1"
