env            = "prod"
schema_version = "3"
