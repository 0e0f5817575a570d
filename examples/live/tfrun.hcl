# Root config of the example live repository (see ../README.md).
repo = "infra"

state {
  bucket       = "acme-tfstate"
  region       = "eu-west-1"
  use_lockfile = true # S3-native locks (terraform 1.10+); no DynamoDB table
  key          = "{env}/{region}/{stack}.tfstate"
  encrypt      = true
}

default_region = "eu-west-1"

environments {
  prod            = { account_id = "222222222222", profile = "prod", protected = true }
  staging         = { account_id = "333333333333", profile = "staging" }
  shared-services = { account_id = "111111111111", profile = "shared" }
}

tags = { Owner = "platform", CostCenter = "1234" }

terraform_version = ">= 1.10"

providers {
  aws = "~> 5.0"
}
