env            = "staging"
schema_version = "4"
