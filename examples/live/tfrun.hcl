# Root config of the example live repository (see ../README.md).
repo = "infra"

state {
  bucket         = "acme-tfstate"
  region         = "eu-west-1"
  dynamodb_table = "acme-tfstate-locks"
  key            = "{env}/{region}/{stack}.tfstate"
  encrypt        = true
}

default_region = "eu-west-1"

environments {
  prod            = { account_id = "222222222222", profile = "prod", protected = true }
  staging         = { account_id = "333333333333", profile = "staging" }
  shared-services = { account_id = "111111111111", profile = "shared" }
}

tags = { Owner = "platform", CostCenter = "1234" }

terraform_version = ">= 1.6"

providers {
  aws = "~> 5.0"
}
